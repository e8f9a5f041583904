import {
  ApiBlueprint,
  createFrontendPlugin,
  discoveryApiRef,
  fetchApiRef,
  PageBlueprint,
} from '@backstage/frontend-plugin-api';
import { EntityCardBlueprint } from '@backstage/plugin-catalog-react/alpha';
import CloudQueueIcon from '@material-ui/icons/CloudQueue';
import { createMaxcloudApi, maxcloudApiRef } from '../api';
import { isMaxcloudResource } from '../filters';
import { rootRouteRef } from '../routes';

/** The max-cloud client, talking to the `maxcloud` backend plugin as the signed-in user. */
export const maxcloudApi = ApiBlueprint.make({
  params: defineParams =>
    defineParams({
      api: maxcloudApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: deps => createMaxcloudApi(deps),
    }),
});

/** `/maxcloud`: marketplace, order forms, orders, My services and reviews. */
export const maxcloudPage = PageBlueprint.make({
  params: {
    path: '/maxcloud',
    routeRef: rootRouteRef,
    title: 'max-cloud',
    icon: <CloudQueueIcon fontSize="small" />,
    loader: () => import('../components/MaxcloudRouter').then(m => <m.MaxcloudContent />),
  },
});

/** The max-cloud resource of catalog entities with `maxcloud.dev/resource`. */
export const maxcloudEntityCard = EntityCardBlueprint.make({
  name: 'resource',
  params: {
    filter: isMaxcloudResource,
    loader: () => import('./EntityCard').then(m => <m.NfsEntityMaxcloudCard />),
  },
});

/**
 * The max-cloud frontend plugin for the new frontend system.
 *
 * @public
 */
export default createFrontendPlugin({
  pluginId: 'maxcloud',
  title: 'max-cloud',
  icon: <CloudQueueIcon fontSize="small" />,
  info: { packageJson: () => import('../../package.json') },
  routes: { root: rootRouteRef },
  extensions: [maxcloudApi, maxcloudPage, maxcloudEntityCard],
});
