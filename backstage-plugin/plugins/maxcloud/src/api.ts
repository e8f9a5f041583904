import {
  createApiRef,
  type DiscoveryApi,
  type FetchApi,
} from '@backstage/frontend-plugin-api';
import { MaxcloudClient } from '@maxcloud/backstage-plugin-maxcloud-common';

/**
 * The max-cloud API of the frontend: the order service's client, talking to the `maxcloud` backend plugin
 * (`discoveryApi.getBaseUrl('maxcloud')`) with Backstage's `fetchApi`, which adds the user's token. The
 * browser never holds a max-cloud API key: the backend plugin acts for the user's tenant.
 *
 * @public
 */
export type MaxcloudApi = MaxcloudClient;

/**
 * Reference of {@link MaxcloudApi}; the same ref serves the new frontend system and legacy apps.
 *
 * @public
 */
export const maxcloudApiRef = createApiRef<MaxcloudApi>().with({
  id: 'plugin.maxcloud.api',
  pluginId: 'maxcloud',
});

/** Builds the browser client over Backstage's discovery and fetch APIs. */
export function createMaxcloudApi(deps: {
  discoveryApi: DiscoveryApi;
  fetchApi: FetchApi;
}): MaxcloudApi {
  const { discoveryApi, fetchApi } = deps;
  return new MaxcloudClient({
    baseUrl: () => discoveryApi.getBaseUrl('maxcloud'),
    fetch: (input, init) => fetchApi.fetch(input, init),
  });
}
