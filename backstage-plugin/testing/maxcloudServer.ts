/**
 * Test support: a real `maxcloud-server dev` (SQLite and local Git repositories in a temporary directory) on a
 * free loopback port, started by the tests of every package so they run against the order service itself
 * rather than hand-written answers. Not part of any published package.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The repository root (the Cargo workspace), two levels above `backstage-plugin/testing`. */
export const REPO_ROOT = resolve(__dirname, '..', '..');

export interface RunningMaxcloud {
  /** e.g. `http://127.0.0.1:41234` */
  url: string;
  /** `${url}/api/v1` */
  api: string;
  dataDir: string;
  stop(): Promise<void>;
  /** Registers an organisation; returns its slug and the admin's API key. */
  register(email: string, orgName: string): Promise<{ slug: string; apiKey: string }>;
  /** Registers a second user of the organisation: the admin invites them as a member; returns their API key. */
  addMember(adminKey: string, email: string): Promise<string>;
  /** A JSON call with an API key; returns status and body. */
  call(key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export function serverBinary(): string {
  const bin = process.env.MAXCLOUD_SERVER_BIN ?? join(REPO_ROOT, 'target', 'debug', 'maxcloud-server');
  if (!existsSync(bin)) {
    throw new Error(
      `maxcloud-server not found at ${bin}: build it with \`cargo build --bins\` (scripts/test.sh does) or set MAXCLOUD_SERVER_BIN`,
    );
  }
  return bin;
}

/**
 * `args`: more flags of `maxcloud-server dev` (e.g. `--quotas FILE`); `env`: more environment (e.g.
 * `MAXCLOUD_LOKI_URL` of a {@link startLoki} Loki).
 */
export async function startMaxcloud(
  options: { args?: string[]; env?: Record<string, string> } = {},
): Promise<RunningMaxcloud> {
  const dataDir = mkdtempSync(join(tmpdir(), 'maxcloud-backstage-'));
  const child: ChildProcess = spawn(
    serverBinary(),
    ['dev', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--xrds-dir', join(REPO_ROOT, 'xrds'), ...(options.args ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MAXCLOUD_LOG: 'warn', ...options.env } },
  );
  let stderr = '';
  child.stderr!.on('data', chunk => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const url = await new Promise<string>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`maxcloud-server did not start in 30 s: ${stderr}`)), 30_000);
    child.stdout!.on('data', chunk => {
      out += chunk;
      const match = /API:\s+(http:\/\/[^/\s]+)\/api\/v1/.exec(out);
      if (match) {
        clearTimeout(timer);
        ok(match[1]);
      }
    });
    child.on('exit', code => {
      clearTimeout(timer);
      fail(new Error(`maxcloud-server exited with ${code}: ${stderr}`));
    });
  });
  child.stdout!.resume();
  const api = `${url}/api/v1`;
  const call = async (key: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${api}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    url,
    api,
    dataDir,
    call,
    async register(email, orgName) {
      const { status, body } = await call('', 'POST', '/auth/register', { email, org_name: orgName });
      if (status !== 201) throw new Error(`register ${orgName}: ${status} ${JSON.stringify(body)}`);
      return { slug: body.organization.slug, apiKey: body.api_key };
    },
    async addMember(adminKey, email) {
      const invite = await call(adminKey, 'POST', '/auth/invites', { email, role: 'member' });
      if (invite.status !== 201 || !invite.body.token) {
        throw new Error(`invite ${email}: ${invite.status} ${JSON.stringify(invite.body)}`);
      }
      const accepted = await call('', 'POST', '/auth/accept-invite', { token: invite.body.token });
      if (accepted.status !== 201) throw new Error(`accept the invite of ${email}: ${accepted.status} ${JSON.stringify(accepted.body)}`);
      return accepted.body.api_key;
    },
    stop: () => stopProcess(child, dataDir),
  };
}

/**
 * Stops a process a test started (SIGTERM, SIGKILL after 5 s; no timer is left behind) and removes its
 * directory.
 */
export async function stopProcess(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null) {
    const exited = new Promise(ok => child.once('exit', ok));
    child.kill('SIGTERM');
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([exited, new Promise(ok => (timer = setTimeout(ok, 5000)))]);
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Polls `check` until it returns a value (not undefined), at most `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise(ok => setTimeout(ok, 100));
  }
}
