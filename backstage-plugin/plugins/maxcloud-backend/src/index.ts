/**
 * The max-cloud backend plugin: the Backstage user's path to the max-cloud order service. It maps the user's
 * identity to a max-cloud tenant and role and calls the order service with the tenant's API key, which never
 * reaches the browser.
 *
 * @packageDocumentation
 */
export { maxcloudPlugin as default } from './plugin';
export { TENANT_HEADER } from './service/router';
export { FORWARDED_ROUTES } from './service/routes';
export type { ForwardedRoute } from './service/routes';
