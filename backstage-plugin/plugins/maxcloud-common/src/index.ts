/**
 * Types and client of the max-cloud order service API, shared by the max-cloud Backstage plugins.
 *
 * The types are generated from the order service's `/api/v1/openapi.json` (`npm run generate-api`); a test
 * compares them with what a running server describes, so the plugins and the server cannot drift.
 *
 * @packageDocumentation
 */
export * from './types';
export * from './errors';
export * from './client';
export * from './paths';
export type { components, paths, operations } from './generated/openapi';
