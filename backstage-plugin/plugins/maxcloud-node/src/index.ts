/**
 * Backend helpers of the max-cloud Backstage plugins: the `maxcloud` configuration, the mapping of Backstage
 * users to max-cloud tenants and roles, and the order service client that holds the tenant's API key.
 *
 * @packageDocumentation
 */
export * from './config';
export * from './service';
export * from './entities';
