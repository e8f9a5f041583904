import {
  coreServices,
  createServiceFactory,
  createServiceRef,
} from '@backstage/backend-plugin-api';
import { MaxcloudClient } from '@maxcloud/backstage-plugin-maxcloud-common';
import { NotFoundError } from '@backstage/errors';
import { clientForTenant, MaxcloudConfig, readMaxcloudConfig, TenantConfig } from './config';

/** The order service as the max-cloud backend plugin and modules see it. */
export interface MaxcloudService {
  readonly config: MaxcloudConfig;
  /** The configured tenant `slug`; NotFoundError when it is not configured. */
  tenant(slug: string): TenantConfig;
  /** A client acting with the tenant's API key, for the Backstage user `onBehalfOf` when given. */
  client(slug: string, onBehalfOf?: string): MaxcloudClient;
}

/**
 * Root service with the validated `maxcloud` configuration, shared by the `maxcloud` backend plugin, the
 * scaffolder action and the catalog entity provider.
 */
export const maxcloudServiceRef = createServiceRef<MaxcloudService>({
  id: 'maxcloud.service',
  scope: 'root',
  defaultFactory: async service =>
    createServiceFactory({
      service,
      deps: { config: coreServices.rootConfig },
      factory({ config }) {
        return createMaxcloudService(readMaxcloudConfig(config));
      },
    }),
});

export function createMaxcloudService(config: MaxcloudConfig): MaxcloudService {
  const tenant = (slug: string) => {
    const found = config.tenants.find(t => t.slug === slug);
    if (!found) throw new NotFoundError(`max-cloud tenant ${slug} is not configured in maxcloud.tenants`);
    return found;
  };
  return {
    config,
    tenant,
    client: (slug, onBehalfOf) => clientForTenant(config, tenant(slug), onBehalfOf),
  };
}
