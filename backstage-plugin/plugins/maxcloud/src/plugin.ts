import {
  createApiFactory,
  createComponentExtension,
  createPlugin,
  createRoutableExtension,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/core-plugin-api';
import { createMaxcloudApi, maxcloudApiRef } from './api';
import { legacyRootRouteRef } from './routes';

/**
 * The max-cloud plugin for legacy Backstage apps (`createPlugin`).
 *
 * @public
 */
export const maxcloudPlugin = createPlugin({
  id: 'maxcloud',
  apis: [
    createApiFactory({
      api: maxcloudApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: deps => createMaxcloudApi(deps),
    }),
  ],
  routes: { root: legacyRootRouteRef },
});

/**
 * The max-cloud page for legacy apps: `<Route path="/maxcloud" element={<MaxcloudPage />} />`.
 *
 * @public
 */
export const MaxcloudPage = maxcloudPlugin.provide(
  createRoutableExtension({
    name: 'MaxcloudPage',
    component: () => import('./components/MaxcloudRouter').then(m => m.MaxcloudLegacyPage),
    mountPoint: legacyRootRouteRef,
  }),
);

/**
 * The entity card of max-cloud resources for legacy apps; show it for entities where
 * {@link isMaxcloudResource} holds.
 *
 * @public
 */
export const EntityMaxcloudCard = maxcloudPlugin.provide(
  createComponentExtension({
    name: 'EntityMaxcloudCard',
    component: {
      lazy: () => import('./components/LegacyEntityCard').then(m => m.LegacyEntityMaxcloudCard),
    },
  }),
);
