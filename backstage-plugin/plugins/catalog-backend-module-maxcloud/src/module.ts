import {
  coreServices,
  createBackendModule,
} from '@backstage/backend-plugin-api';
import { catalogProcessingExtensionPoint } from '@backstage/plugin-catalog-node';
import { maxcloudServiceRef } from '@maxcloud/backstage-plugin-maxcloud-node';
import { MaxcloudEntityProvider } from './MaxcloudEntityProvider';

/**
 * Adds the {@link MaxcloudEntityProvider} to the catalog: max-cloud service types as API entities and
 * Software Templates, tenant resources as Components and Resources.
 *
 * @public
 */
export const catalogModuleMaxcloud = createBackendModule({
  pluginId: 'catalog',
  moduleId: 'maxcloud',
  register({ registerInit }) {
    registerInit({
      deps: {
        processing: catalogProcessingExtensionPoint,
        maxcloud: maxcloudServiceRef,
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        scheduler: coreServices.scheduler,
        lifecycle: coreServices.lifecycle,
      },
      async init({
        processing,
        maxcloud,
        config,
        logger,
        scheduler,
        lifecycle,
      }) {
        const provider = MaxcloudEntityProvider.fromConfig(config, {
          maxcloud,
          logger,
          scheduler,
        });
        processing.addEntityProvider(provider);
        lifecycle.addShutdownHook(() => provider.stop());
      },
    });
  },
});
