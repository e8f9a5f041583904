/**
 * The `maxcloud` module of the scaffolder: the `maxcloud:order:create` action, with which Software Templates
 * order max-cloud services (Apps, Databases, Registries, DNS records, Workspaces).
 *
 * @packageDocumentation
 */
export { scaffolderModuleMaxcloud as default } from './module';
export {
  createMaxcloudOrderAction,
  idempotencyKeyOf,
  MAXCLOUD_ORDER_CREATE_ACTION_ID,
} from './actions/orderCreate';
export type {
  MaxcloudOrderActionOptions,
  MaxcloudOrderWait,
} from './actions/orderCreate';
