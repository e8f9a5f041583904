// Regenerates plugins/maxcloud-common/src/generated/openapi.ts from the order service's OpenAPI document.
//
//   node scripts/generate-api.mjs http://127.0.0.1:8080/api/v1/openapi.json
//   node scripts/generate-api.mjs path/to/openapi.json
//
// The test `openapi.test.ts` of maxcloud-common renders the document of a running `maxcloud-server dev` the same
// way and fails when the committed file differs, so the API types cannot drift from the server.
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderOpenApiTypes } from './render-openapi.mjs';

const source = process.argv[2];
if (!source) {
  console.error('usage: generate-api.mjs <openapi.json URL or file>');
  process.exit(2);
}
const target = fileURLToPath(
  new URL('../plugins/maxcloud-common/src/generated/openapi.ts', import.meta.url),
);
await writeFile(target, await renderOpenApiTypes(source));
console.log(`wrote ${target}`);
