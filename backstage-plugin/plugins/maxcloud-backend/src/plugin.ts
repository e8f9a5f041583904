import { coreServices, createBackendPlugin } from '@backstage/backend-plugin-api';
import { maxcloudServiceRef } from '@maxcloud/backstage-plugin-maxcloud-node';
import { createRouter } from './service/router';

/**
 * The `maxcloud` backend plugin: serves `/api/maxcloud/*`, the browser's only way to the order service.
 *
 * @public
 */
export const maxcloudPlugin = createBackendPlugin({
  pluginId: 'maxcloud',
  register(env) {
    env.registerInit({
      deps: {
        logger: coreServices.logger,
        httpAuth: coreServices.httpAuth,
        httpRouter: coreServices.httpRouter,
        userInfo: coreServices.userInfo,
        auditor: coreServices.auditor,
        maxcloud: maxcloudServiceRef,
      },
      async init({ logger, httpAuth, httpRouter, userInfo, auditor, maxcloud }) {
        logger.info(
          `max-cloud order service ${maxcloud.config.baseUrl}, tenants ${maxcloud.config.tenants.map(t => t.slug).join(', ')}`,
        );
        httpRouter.use(await createRouter({ logger, httpAuth, userInfo, auditor, maxcloud }));
      },
    });
  },
});
