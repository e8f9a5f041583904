import {
  coreServices,
  createBackendModule,
} from '@backstage/backend-plugin-api';
import { scaffolderActionsExtensionPoint } from '@backstage/plugin-scaffolder-node';
import { maxcloudServiceRef } from '@maxcloud/backstage-plugin-maxcloud-node';
import { createMaxcloudOrderAction } from './actions/orderCreate';

/**
 * Adds the `maxcloud:order:create` action to the scaffolder.
 *
 * @public
 */
export const scaffolderModuleMaxcloud = createBackendModule({
  pluginId: 'scaffolder',
  moduleId: 'maxcloud',
  register({ registerInit }) {
    registerInit({
      deps: {
        scaffolderActions: scaffolderActionsExtensionPoint,
        maxcloud: maxcloudServiceRef,
        userInfo: coreServices.userInfo,
        config: coreServices.rootConfig,
      },
      async init({ scaffolderActions, maxcloud, userInfo, config }) {
        scaffolderActions.addActions(
          createMaxcloudOrderAction({ maxcloud, userInfo, config }),
        );
      },
    });
  },
});
