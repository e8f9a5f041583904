/**
 * The max-cloud marketplace for Backstage: order services through forms generated from their JSON Schemas,
 * follow the orders and the tenant's services live, and see max-cloud resources on catalog entities.
 *
 * The default export is the plugin for the new frontend system; `maxcloudPlugin`, `MaxcloudPage` and
 * `EntityMaxcloudCard` serve legacy apps.
 *
 * @packageDocumentation
 */
export { default } from './alpha';
export { maxcloudPlugin, MaxcloudPage, EntityMaxcloudCard } from './plugin';
export { maxcloudApiRef, createMaxcloudApi, type MaxcloudApi } from './api';
export { isMaxcloudResource } from './filters';
export { rootRouteRef, legacyRootRouteRef } from './routes';
