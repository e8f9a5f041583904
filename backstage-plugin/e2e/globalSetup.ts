/**
 * Starts what the end-to-end test drives, all on 127.0.0.1 and all stopped at the end:
 *
 * 1. a real `maxcloud-server dev` (SQLite, local Git repositories) with two registered organisations, reading
 *    services' container logs from a real Loki (testing/loki.ts) the test pushes lines into;
 * 2. the plugin's dev backend (plugins/maxcloud-backend: the `maxcloud` backend plugin with Backstage's guest
 *    sign-in), configured with their API keys (e2e/app-config.e2e.yaml) — the browser never sees a key;
 * 3. the plugin's dev app (plugins/maxcloud/dev: the new frontend system).
 *
 * The test reads the URLs and the organisation's admin key from the environment this sets.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { startLoki } from '../testing/loki';
import { startMaxcloud } from '../testing/maxcloudServer';

const ROOT = resolve(__dirname, '..');
const LOGS = join(ROOT, 'test-results', 'e2e-logs');

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}

/** Starts `backstage-cli package start` in a package, in its own process group, output to a log file. */
function startPackage(name: string, dir: string, env: Record<string, string>): ChildProcess {
  const log = createWriteStream(join(LOGS, `${name}.log`));
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'node_modules', '@backstage', 'cli', 'bin', 'backstage-cli'),
      'package',
      'start',
      '--config',
      join(ROOT, 'app-config.yaml'),
      '--config',
      join(ROOT, 'e2e', 'app-config.e2e.yaml'),
    ],
    {
      cwd: join(ROOT, 'plugins', dir),
      env: { ...process.env, ...env, BROWSER: 'none', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  return child;
}

async function stopGroup(child: ChildProcess | undefined) {
  if (!child || child.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise(ok => child.once('exit', ok));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  await Promise.race([exited, new Promise(ok => setTimeout(ok, 10_000))]);
  if (child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/** Polls `url` until `ready(status)` holds; fails early when `child` exits. */
async function waitFor(url: string, ready: (status: number) => boolean, child: ChildProcess, what: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`${what} exited with ${child.exitCode}; see ${LOGS}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      if (ready(response.status)) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not get ready in ${timeoutMs / 1000} s; see ${LOGS}`);
    await new Promise(ok => setTimeout(ok, 500));
  }
}

export default async function globalSetup() {
  mkdirSync(LOGS, { recursive: true });
  const loki = await startLoki();
  const maxcloud = await startMaxcloud({ env: { MAXCLOUD_LOKI_URL: loki.url } }).catch(async e => {
    await loki.stop();
    throw e;
  });
  let backend: ChildProcess | undefined;
  let app: ChildProcess | undefined;
  const teardown = async () => {
    await Promise.all([stopGroup(app), stopGroup(backend)]);
    await maxcloud.stop();
    await loki.stop();
  };
  try {
    const { slug, apiKey } = await maxcloud.register('jane@shop.example', 'Shop Co');
    // a second organisation the guest user is only a member of
    const second = await maxcloud.register('ops@zeta.example', 'Zeta Labs');
    const [appPort, backendPort] = [await freePort(), await freePort()];
    const env = {
      MAXCLOUD_URL: maxcloud.url,
      MAXCLOUD_TENANT: slug,
      MAXCLOUD_API_KEY: apiKey,
      MAXCLOUD_E2E_TENANT2: second.slug,
      MAXCLOUD_E2E_API_KEY2: second.apiKey,
      MAXCLOUD_E2E_APP_PORT: String(appPort),
      MAXCLOUD_E2E_BACKEND_PORT: String(backendPort),
    };
    backend = startPackage('dev-backend', 'maxcloud-backend', env);
    app = startPackage('dev-app', 'maxcloud', env);
    const backendUrl = `http://127.0.0.1:${backendPort}`;
    const appUrl = `http://127.0.0.1:${appPort}`;
    // the maxcloud plugin answers (401 without a Backstage token) once the backend has started
    await waitFor(`${backendUrl}/api/maxcloud/whoami`, s => s === 401, backend, 'the dev backend', 120_000);
    // the dev server answers once the first bundle is built
    await waitFor(`${appUrl}/`, s => s === 200, app, 'the dev app', 180_000);

    process.env.MAXCLOUD_E2E_APP_URL = appUrl;
    process.env.MAXCLOUD_E2E_BACKEND_URL = backendUrl;
    process.env.MAXCLOUD_E2E_API = maxcloud.api;
    process.env.MAXCLOUD_E2E_LOKI_URL = loki.url;
    process.env.MAXCLOUD_E2E_TENANT = slug;
    process.env.MAXCLOUD_E2E_API_KEY = apiKey;
    process.env.MAXCLOUD_E2E_TENANT2 = second.slug;
    process.env.MAXCLOUD_E2E_API_KEY2 = second.apiKey;
  } catch (e) {
    await teardown();
    throw e;
  }
  return teardown;
}
