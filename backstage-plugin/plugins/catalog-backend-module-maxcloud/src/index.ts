/**
 * The `maxcloud` module of the catalog: max-cloud service types as API entities and Software Templates that
 * order them, tenant resources as Components (Apps) and Resources (everything else).
 *
 * @packageDocumentation
 */
export { catalogModuleMaxcloud as default } from './module';
export {
  MaxcloudEntityProvider,
  DEFAULT_MAXCLOUD_CATALOG_SCHEDULE,
  DEFAULT_MAXCLOUD_PLATFORM_OWNER,
} from './MaxcloudEntityProvider';
export type { MaxcloudEntityProviderOptions } from './MaxcloudEntityProvider';
export {
  apiEntityOf,
  templateEntityOf,
  resourceEntityOf,
  MAXCLOUD_STATUS_ANNOTATION,
} from './entities';
export type { EntityContext } from './entities';
