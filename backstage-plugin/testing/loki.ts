/**
 * Test support: a real Grafana Loki single binary (built from its Go module by `scripts/testbin.sh` at
 * `LOKI_VERSION` of scripts/versions.env, like the Rust suite's `crates/testenv/src/loki.rs`), on free loopback
 * ports with an in-memory ring and its chunks in a temporary directory. `maxcloud-server dev` given its URL
 * (`MAXCLOUD_LOKI_URL`) serves `GET /services/{id}/logs` from it without a cluster; the tests push lines through
 * Loki's push API labelled as a Kubernetes log shipper (Alloy, Promtail) labels them.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, stopProcess } from './maxcloudServer';

/** Lines of one container of an App's pod (`values`: [time in ms since the epoch, line]). */
export interface LogStream {
  namespace: string;
  pod: string;
  app: string;
  revision: string;
  /** default `user-container`, the App's own container in a Knative pod */
  container?: string;
  values: Array<[number, string]>;
}

/**
 * Pushes lines into the Loki at `url` (`POST /loki/api/v1/push`) with the labels a log shipper's Kubernetes
 * discovery sets: `namespace`, `pod`, `container`, `maxcloud_dev_name`, `serving_knative_dev_revision`.
 */
export async function pushLogs(url: string, stream: LogStream): Promise<void> {
  const body = {
    streams: [
      {
        stream: {
          namespace: stream.namespace,
          pod: stream.pod,
          container: stream.container ?? 'user-container',
          maxcloud_dev_name: stream.app,
          serving_knative_dev_revision: stream.revision,
        },
        values: stream.values.map(([ms, line]) => [`${Math.round(ms)}000000`, line]),
      },
    ],
  };
  const response = await fetch(`${url}/loki/api/v1/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 204) throw new Error(`loki push: ${response.status} ${await response.text()}`);
}

export interface RunningLoki {
  /** `http://127.0.0.1:<port>`: what `maxcloud-server` is given as `MAXCLOUD_LOKI_URL`. */
  url: string;
  /** {@link pushLogs} into this Loki. */
  push(stream: LogStream): Promise<void>;
  stop(): Promise<void>;
}

/** The Loki binary scripts/testbin.sh built; a clear error when it has not run (the test does not skip). */
export function lokiBinary(): string {
  const versions = readFileSync(join(REPO_ROOT, 'scripts', 'versions.env'), 'utf8');
  const version = /^LOKI_VERSION=(\S+)/m.exec(versions)?.[1];
  if (!version) throw new Error('LOKI_VERSION is missing from scripts/versions.env');
  const testbin = process.env.MAXCLOUD_TESTBIN ?? join(homedir(), '.cache', 'maxcloud', 'testbin');
  const bin = join(testbin, `loki-${version}`, 'loki');
  if (!existsSync(bin)) {
    throw new Error(`Loki ${version} not found at ${bin}: build it with scripts/testbin.sh (scripts/test.sh does)`);
  }
  return bin;
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}

export async function startLoki(): Promise<RunningLoki> {
  const bin = lokiBinary();
  const dir = mkdtempSync(join(tmpdir(), 'maxcloud-loki-'));
  const [port, grpcPort] = [await freePort(), await freePort()];
  const q = (p: string) => JSON.stringify(p);
  const config = [
    'auth_enabled: false',
    'server:',
    `  http_listen_address: 127.0.0.1`,
    `  http_listen_port: ${port}`,
    `  grpc_listen_address: 127.0.0.1`,
    `  grpc_listen_port: ${grpcPort}`,
    '  log_level: warn',
    'common:',
    '  instance_addr: 127.0.0.1',
    `  path_prefix: ${q(join(dir, 'data'))}`,
    '  replication_factor: 1',
    '  storage:',
    '    filesystem:',
    `      chunks_directory: ${q(join(dir, 'data', 'chunks'))}`,
    `      rules_directory: ${q(join(dir, 'data', 'rules'))}`,
    '  ring:',
    '    kvstore:',
    '      store: inmemory',
    'schema_config:',
    '  configs:',
    '    - from: "2020-10-24"',
    '      store: tsdb',
    '      object_store: filesystem',
    '      schema: v13',
    '      index:',
    '        prefix: index_',
    '        period: 24h',
    'ingester:',
    '  lifecycler:',
    '    min_ready_duration: 0s',
    'limits_config:',
    '  reject_old_samples: false',
    'analytics:',
    '  reporting_enabled: false',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'config.yaml'), config);
  const child: ChildProcess = spawn(bin, [`-config.file=${join(dir, 'config.yaml')}`, '-target=all'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', chunk => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = () => stopProcess(child, dir);
  // Ready once the ingester joined the ring: pushes are accepted from then on.
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`loki exited with ${child.exitCode}: ${stderr}`);
    }
    const ready = await fetch(`${url}/ready`).then(r => r.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`loki was not ready in 90 s: ${stderr}`);
    }
    await new Promise(ok => setTimeout(ok, 200));
  }
  return {
    url,
    push: stream => pushLogs(url, stream),
    stop,
  };
}
