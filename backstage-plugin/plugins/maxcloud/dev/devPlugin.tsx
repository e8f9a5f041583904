import { Navigate, useLocation } from 'react-router-dom';
import { createFrontendPlugin, PageBlueprint } from '@backstage/frontend-plugin-api';
import { Content } from '@backstage/core-components';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import type { Entity } from '@backstage/catalog-model';
import { MAXCLOUD_ANNOTATIONS } from '@maxcloud/backstage-plugin-maxcloud-common';
import Grid from '@material-ui/core/Grid';
import { NfsEntityMaxcloudCard } from '../src/alpha/EntityCard';

/** A catalog entity as the catalog module makes one for a max-cloud resource. */
function EntityCardDemo() {
  const query = new URLSearchParams(useLocation().search);
  const resource = query.get('resource') ?? 'App/shop';
  const tenant = query.get('tenant') ?? '';
  const entity: Entity = {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: {
      name: resource.split('/')[1] ?? 'shop',
      annotations: {
        [MAXCLOUD_ANNOTATIONS.resource]: resource,
        ...(tenant ? { [MAXCLOUD_ANNOTATIONS.tenant]: tenant } : {}),
      },
    },
    spec: { type: 'service', lifecycle: 'production', owner: 'group:default/shop-team' },
  };
  return (
    <Content>
      <Grid container>
        <Grid item xs={12} md={6}>
          <EntityProvider entity={entity}>
            <NfsEntityMaxcloudCard />
          </EntityProvider>
        </Grid>
      </Grid>
    </Content>
  );
}

/** Dev-only pages of the dev app. */
export const devPlugin = createFrontendPlugin({
  pluginId: 'maxcloud-dev',
  extensions: [
    PageBlueprint.make({
      name: 'home',
      params: {
        path: '/',
        noHeader: true,
        loader: async () => <Navigate to="/maxcloud" replace />,
      },
    }),
    PageBlueprint.make({
      name: 'entity-card',
      params: {
        path: '/entity-card',
        title: 'Entity card (dev)',
        loader: async () => <EntityCardDemo />,
      },
    }),
  ],
});
