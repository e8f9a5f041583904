// The API types of maxcloud-common are what a running order service describes: this renders the
// /api/v1/openapi.json of a fresh `maxcloud-server dev` exactly as `npm run generate-api` does and fails on any
// difference, so the plugins and the server cannot drift. Run by `node --test scripts/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderOpenApiTypes } from './render-openapi.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const committed = fileURLToPath(
  new URL('../plugins/maxcloud-common/src/generated/openapi.ts', import.meta.url),
);

test('generated API types match the running order service', async () => {
  const bin = process.env.MAXCLOUD_SERVER_BIN ?? join(root, 'target', 'debug', 'maxcloud-server');
  assert.ok(existsSync(bin), `maxcloud-server not found at ${bin}: run cargo build --bins`);
  const data = mkdtempSync(join(tmpdir(), 'maxcloud-openapi-'));
  const server = spawn(bin, ['dev', '--listen', '127.0.0.1:0', '--data-dir', data], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Promise((ok, fail) => {
      let out = '';
      const timer = setTimeout(() => fail(new Error('maxcloud-server did not start in 30 s')), 30_000);
      server.stdout.on('data', chunk => {
        out += chunk;
        const match = /OpenAPI:\s+(\S+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          ok(match[1]);
        }
      });
      server.on('exit', code => fail(new Error(`maxcloud-server exited with ${code}`)));
    });
    const fresh = await renderOpenApiTypes(url);
    assert.equal(
      readFileSync(committed, 'utf8'),
      fresh,
      'plugins/maxcloud-common/src/generated/openapi.ts is out of date: run `npm run generate-api -- <server>/api/v1/openapi.json`',
    );
  } finally {
    server.kill('SIGTERM');
    rmSync(data, { recursive: true, force: true });
  }
});
