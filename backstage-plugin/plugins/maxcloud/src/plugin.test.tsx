import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { Route, Routes } from 'react-router-dom';
import {
  createExtensionTester,
  mockApis,
  renderInTestApp,
  renderTestApp,
} from '@backstage/frontend-test-utils';
import { renderInTestApp as renderInLegacyTestApp, TestApiProvider } from '@backstage/test-utils';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import { EntityCardBlueprint } from '@backstage/plugin-catalog-react/alpha';
import type { Entity } from '@backstage/catalog-model';
import maxcloudPlugin, {
  EntityMaxcloudCard,
  isMaxcloudResource,
  legacyRootRouteRef,
  maxcloudApiRef,
  MaxcloudPage,
  maxcloudPlugin as legacyPlugin,
  rootRouteRef,
} from '.';
import { maxcloudEntityCard } from './alpha';
import { startTestMaxcloud, TestMaxcloud } from './components/testUtils';
import { MaxcloudRouter } from './components/MaxcloudRouter';
import { MaxcloudClient } from '@maxcloud/backstage-plugin-maxcloud-common';

jest.setTimeout(60_000);

function entity(annotations: Record<string, string>): Entity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'shop', annotations },
    spec: { type: 'service', owner: 'group:default/shop-co', lifecycle: 'production' },
  };
}

describe('the max-cloud plugin against maxcloud-server dev', () => {
  let mc: TestMaxcloud;
  beforeAll(async () => {
    mc = await startTestMaxcloud('Plugin Co');
  });
  afterAll(() => mc?.server.stop());

  it("mounts its page in a new-frontend-system app; its client uses Backstage's discovery and fetch APIs", async () => {
    const user = userEvent.setup();
    const fetchApi = mockApis.fetch({ injectIdentityAuth: { token: mc.apiKey } });
    const discovery = mockApis.discovery.mock({
      // the backend plugin serves the order service's paths; here the order service answers itself
      getBaseUrl: async (pluginId: string) => {
        expect(pluginId).toBe('maxcloud');
        return mc.server.api;
      },
    });
    await renderTestApp({
      features: [maxcloudPlugin],
      apis: [fetchApi, discovery],
      initialRouteEntries: ['/maxcloud'],
    });
    expect(await screen.findByTestId('service-type-App', {}, { timeout: 10_000 })).toBeInTheDocument();
    await user.click(screen.getByRole('tab', { name: 'My services' }));
    await waitFor(() => expect(screen.getByTestId('services-empty')).toBeInTheDocument());
  });

  it('says when max-cloud refuses the user, instead of empty pages', async () => {
    const anonymous = new MaxcloudClient({ baseUrl: mc.server.api });
    await renderInTestApp(<MaxcloudRouter />, {
      apis: [[maxcloudApiRef, anonymous]],
      mountPath: '/maxcloud',
      initialRouteEntries: ['/maxcloud/services'],
    });
    // the order service itself has no /whoami (404: the views act for the key's tenant); it refuses the rest
    const refusal = await anonymous.resources().catch(e => e);
    expect(refusal).toMatchObject({ status: 401 });
    expect((await screen.findAllByText(refusal.message, { exact: false }, { timeout: 10_000 }))[0]).toBeVisible();
    expect(screen.queryByTestId('services')).not.toBeInTheDocument();
  });

  it('shows the entity card for entities annotated with a max-cloud resource, live', async () => {
    const order = await mc.client.createOrder({ kind: 'App', name: 'shop', parameters: { image: 'nginx:1.27' } as any });
    const card = createExtensionTester(maxcloudEntityCard);
    const filter = card.get(EntityCardBlueprint.dataRefs.filterFunction)!;
    const annotated = entity({ 'maxcloud.dev/resource': 'App/shop', 'maxcloud.dev/tenant': mc.slug });
    expect(filter(annotated)).toBe(true);
    expect(filter(entity({}))).toBe(false);
    expect(isMaxcloudResource(entity({ 'maxcloud.dev/resource': 'not a ref' }))).toBe(false);

    await renderInTestApp(<EntityProvider entity={annotated}>{card.reactElement()}</EntityProvider>, {
      apis: [[maxcloudApiRef, mc.client]],
      mountedRoutes: { '/cloud': rootRouteRef },
    });
    const body = await screen.findByTestId('maxcloud-entity-card', {}, { timeout: 10_000 });
    await waitFor(() => expect(within(body).getByTestId('order-state')).toHaveAttribute('data-state', 'merged'), {
      timeout: 5_000,
    });
    expect(within(body).getByTestId('resource-status')).toHaveTextContent('pending');
    expect(within(body).getByTestId('pull-request-link')).toHaveAttribute(
      'href',
      `/cloud/orders/${order.id}?tenant=${mc.slug}#pull-request`,
    );
    expect(within(body).getByText('Open in max-cloud').closest('a')).toHaveAttribute(
      'href',
      `/cloud/services/App/shop?tenant=${mc.slug}`,
    );
  });

  it('serves apps on the legacy frontend system: MaxcloudPage', async () => {
    expect(legacyPlugin.getId()).toBe('maxcloud');
    expect(legacyPlugin.routes.root).toBe(legacyRootRouteRef);
    expect([...legacyPlugin.getApis()].map(f => f.api.id)).toEqual([maxcloudApiRef.id]);

    await renderInLegacyTestApp(
      <TestApiProvider apis={[[maxcloudApiRef, mc.client]]}>
        <Routes>
          <Route path="/maxcloud/*" element={<MaxcloudPage />} />
        </Routes>
      </TestApiProvider>,
      { routeEntries: ['/maxcloud'] },
    );
    expect(await screen.findByTestId('service-type-App', {}, { timeout: 10_000 })).toBeInTheDocument();
  });

  it('shows the entity card in legacy apps', async () => {
    const annotated = entity({ 'maxcloud.dev/resource': 'App/shop', 'maxcloud.dev/tenant': mc.slug });
    await renderInLegacyTestApp(
      <TestApiProvider apis={[[maxcloudApiRef, mc.client]]}>
        <EntityProvider entity={annotated}>
          <EntityMaxcloudCard />
        </EntityProvider>
      </TestApiProvider>,
      { mountedRoutes: { '/maxcloud': legacyRootRouteRef } },
    );
    const card = await screen.findByTestId('maxcloud-entity-card', {}, { timeout: 10_000 });
    await waitFor(() => expect(within(card).getByTestId('order-state')).toHaveAttribute('data-state', 'merged'));
    expect(within(card).getByText('Open in max-cloud').closest('a')).toHaveAttribute(
      'href',
      `/maxcloud/services/App/shop?tenant=${mc.slug}`,
    );
  });
});
