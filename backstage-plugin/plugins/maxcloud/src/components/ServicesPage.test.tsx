import { screen, waitFor, within } from '@testing-library/react';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { maxcloudApiRef } from '../api';
import { MaxcloudRouter } from './MaxcloudRouter';
import { startTestMaxcloud, TestMaxcloud } from './testUtils';

jest.setTimeout(60_000);

async function render(mc: TestMaxcloud, path: string, live = true) {
  await renderInTestApp(<MaxcloudRouter />, {
    apis: [[maxcloudApiRef, mc.client]],
    mountPath: '/maxcloud',
    initialRouteEntries: [path],
  });
  if (!live) return;
  await waitFor(() => expect(screen.getAllByTestId('live-indicator')[0]).toHaveAttribute('data-live', 'true'), {
    timeout: 10_000,
  });
}

function row(name: string): HTMLElement {
  const link = screen.getAllByTestId('service-link').find(l => l.textContent === name);
  if (!link) throw new Error(`no row for ${name}`);
  return link.closest('tr')!;
}

describe('My services against maxcloud-server dev', () => {
  let mc: TestMaxcloud;
  beforeAll(async () => {
    mc = await startTestMaxcloud('Services Co');
  });
  afterAll(() => mc?.server.stop());

  it('lists the resources with status, pull request and review state, and new ones appear live', async () => {
    await render(mc, '/maxcloud/services');
    await waitFor(() => expect(screen.getByTestId('services-empty')).toBeInTheDocument());

    // ordered elsewhere (the CLI, another tab): the table follows from the event stream
    await mc.client.createOrder({ kind: 'App', name: 'shop', parameters: { image: 'nginx:1.27' } as any });
    await waitFor(() => expect(row('shop')).toBeInTheDocument(), { timeout: 5_000 });
    await waitFor(() => expect(within(row('shop')).getByTestId('service-order-state')).toHaveAttribute('data-state', 'merged'), {
      timeout: 5_000,
    });
    const shop = row('shop');
    expect(within(shop).getByText('App')).toBeInTheDocument();
    expect(within(shop).getByTestId('resource-status')).toHaveTextContent('pending');
    expect(within(shop).getByText('not yet served')).toBeInTheDocument();
    expect(within(shop).getByTestId('pull-request-link')).toHaveTextContent('Pull request #1');
    expect(within(shop).getByTestId('pull-request-link').getAttribute('href')).toMatch(/^\/maxcloud\/orders\/[0-9a-f-]+#pull-request$/);
    expect(within(shop).getByTestId('review-state')).toHaveTextContent('no review needed');

    // a database needs review by default: its row says so, and changes live once approved
    const db = await mc.client.createOrder({ kind: 'Database', name: 'shop-db', parameters: {} as any });
    await waitFor(() => expect(within(row('shop-db')).getByTestId('review-state')).toHaveTextContent('review pending'), {
      timeout: 5_000,
    });
    expect((await mc.admin('POST', `/orders/${db.id}/approve`, {})).status).toBe(200);
    await waitFor(() => expect(within(row('shop-db')).getByTestId('review-state')).toHaveTextContent(/approved by/), {
      timeout: 5_000,
    });
    expect(within(row('shop-db')).getByTestId('service-order-state')).toHaveAttribute('data-state', 'merged');
  });

  it('shows a resource with its orders, and says so when no cluster is connected for its tree', async () => {
    await mc.client.createOrder({ kind: 'App', name: 'api', parameters: { image: 'nginx:1.27' } as any });
    await render(mc, '/maxcloud/services/App/api');
    const detail = await screen.findByTestId('service-detail', {}, { timeout: 10_000 });
    expect(within(detail).getByText('apps/api.yaml', { exact: false })).toBeInTheDocument();
    expect(await within(detail).findByTestId('resource-tree-unavailable')).toHaveTextContent('no cluster is connected');
    await waitFor(() => expect(within(detail).getByTestId('service-orders')).toHaveTextContent('create'));
    expect(within(detail).getByTestId('service-orders')).toHaveTextContent('Pull request #');
  });

  it('tells when the resource does not exist', async () => {
    await render(mc, '/maxcloud/services/App/ghost', false);
    expect(await screen.findByTestId('service-missing')).toHaveTextContent('no App called ghost');
  });
});
