import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { maxcloudApiRef } from '../api';
import { MaxcloudRouter } from './MaxcloudRouter';
import { startTestMaxcloud, TestMaxcloud } from './testUtils';
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import { RunningLoki, startLoki } from '../../../../testing/loki';

// Loki's start (its ingester joining the ring) takes up to ~30 s on a busy machine.
jest.setTimeout(120_000);

async function render(mc: TestMaxcloud, path: string) {
  return renderInTestApp(<MaxcloudRouter />, {
    apis: [[maxcloudApiRef, mc.client]],
    mountPath: '/maxcloud',
    initialRouteEntries: [path],
  });
}

async function deployed(mc: TestMaxcloud, name: string): Promise<string> {
  const created = await mc.admin('POST', '/services', { name, image: 'nginx:1.27' });
  expect(created.status).toBe(201);
  return created.body.id;
}

function rowOf(name: string): HTMLElement {
  const row = screen.getAllByTestId('revision').find(r => r.getAttribute('data-name') === name);
  if (!row) throw new Error(`no revision row ${name}`);
  return row;
}

describe("An App's revisions and logs on its page, against maxcloud-server dev reading logs from Loki", () => {
  let mc: TestMaxcloud;
  let loki: RunningLoki;
  beforeAll(async () => {
    loki = await startLoki();
    mc = await startTestMaxcloud('Panel Co', { env: { MAXCLOUD_LOKI_URL: loki.url } });
  });
  afterAll(async () => {
    await mc?.server.stop();
    await loki?.stop();
  });

  it('lists the revisions with their traffic share, tags and the latest marker, and follows changes live', async () => {
    const id = await deployed(mc, 'shop');
    expect((await mc.admin('PATCH', `/services/${id}`, { image: 'nginx:1.28' })).status).toBe(200);
    const split = await mc.admin('PUT', `/services/${id}/traffic`, {
      targets: [
        { revision: 'r1', percent: 20, tag: 'old' },
        { latest_revision: true, percent: 80 },
      ],
    });
    expect(split.status).toBe(200);

    await render(mc, '/maxcloud/services/App/shop');
    const table = await screen.findByTestId('revisions', {}, { timeout: 10_000 });
    expect(within(table).getAllByTestId('revision').map(r => r.getAttribute('data-name'))).toEqual(['r1', 'r2']);
    const r1 = rowOf('r1');
    expect(r1).toHaveAttribute('data-percent', '20');
    expect(within(r1).getByTestId('revision-percent')).toHaveTextContent('20%');
    expect(within(r1).getByTestId('revision-tags')).toHaveTextContent('old');
    expect(within(r1).queryByTestId('revision-latest')).toBeNull();
    expect(r1).toHaveTextContent('nginx:1.27');
    const r2 = rowOf('r2');
    expect(within(r2).getByTestId('revision-percent')).toHaveTextContent('80%');
    expect(within(r2).getByTestId('revision-latest')).toHaveTextContent('latest');
    expect(r2).toHaveTextContent('nginx:1.28');
    // without a cluster nothing is reported serving: no ready marker
    expect(r2).toHaveAttribute('data-ready', 'false');

    // Everything back to the latest revision, ordered elsewhere: the panel follows the order's events.
    expect((await mc.admin('PUT', `/services/${id}/traffic`, { to_latest: true })).status).toBe(200);
    await waitFor(() => expect(rowOf('r2')).toHaveAttribute('data-percent', '100'), { timeout: 10_000 });
    expect(rowOf('r1')).toHaveAttribute('data-percent', '0');
  });

  it('shows the last lines with time and revision, follows new ones, and stops following when switched off', async () => {
    await deployed(mc, 'api');
    const pod = { namespace: `mc-${mc.slug}`, pod: 'api-r1-deployment-5d8f-x2k', app: 'api', revision: 'api-r1' };
    const t0 = Date.now() - 60_000;
    await loki.push({ ...pod, values: [[t0, 'starting api'], [t0 + 5, 'listening on :8080'], [t0 + 10, 'GET /health 200']] });
    await loki.push({ ...pod, container: 'queue-proxy', values: [[t0 + 7, 'queue-proxy noise']] });

    const user = userEvent.setup();
    const view = await render(mc, '/maxcloud/services/App/api');
    const lines = await screen.findByTestId('log-lines', {}, { timeout: 10_000 });
    await waitFor(() => expect(within(lines).getAllByTestId('log-line')).toHaveLength(3));
    const shown = within(lines).getAllByTestId('log-line');
    expect(shown.map(l => l.textContent)).toEqual([
      expect.stringMatching(/\[api-r1\] starting api$/),
      expect.stringMatching(/\[api-r1\] listening on :8080$/),
      expect.stringMatching(/\[api-r1\] GET \/health 200$/),
    ]);
    // the time the container printed it, to the millisecond, in local time
    const first = new Date(t0);
    expect(shown[0].textContent).toContain(
      `${String(first.getHours()).padStart(2, '0')}:${String(first.getMinutes()).padStart(2, '0')}:${String(
        first.getSeconds(),
      ).padStart(2, '0')}.${String(first.getMilliseconds()).padStart(3, '0')}`,
    );
    expect(shown[0]).toHaveAttribute('data-pod', pod.pod);
    expect(lines).not.toHaveTextContent('queue-proxy noise');

    // follow: the stream stays open and new lines appear as they are printed
    await user.click(screen.getByTestId('logs-follow'));
    await screen.findByTestId('logs-following');
    await waitFor(() => expect(screen.getAllByTestId('log-line')).toHaveLength(3), { timeout: 10_000 });
    await loki.push({ ...pod, values: [[Date.now(), 'POST /orders 201']] });
    await waitFor(() => expect(screen.getByTestId('log-lines')).toHaveTextContent('POST /orders 201'), {
      timeout: 15_000,
    });
    expect(screen.getAllByTestId('log-line')).toHaveLength(4);

    // switched off: the lines as of now, and nothing printed later shows up
    await user.click(screen.getByTestId('logs-follow'));
    expect(screen.queryByTestId('logs-following')).toBeNull();
    await waitFor(() => expect(screen.getAllByTestId('log-line')).toHaveLength(4), { timeout: 10_000 });
    await loki.push({ ...pod, values: [[Date.now(), 'printed after following stopped']] });
    await new Promise(ok => setTimeout(ok, 1500));
    expect(screen.getByTestId('log-lines')).not.toHaveTextContent('printed after following stopped');
    // Refresh reads the last lines again
    await user.click(screen.getByTestId('logs-refresh'));
    await waitFor(
      () => expect(screen.getByTestId('log-lines')).toHaveTextContent('printed after following stopped'),
      { timeout: 10_000 },
    );
    view.unmount();
  });
});

describe('The logs panel without a log source', () => {
  let mc: TestMaxcloud;
  beforeAll(async () => {
    mc = await startTestMaxcloud('Plain Co');
  });
  afterAll(() => mc?.server.stop());

  it("shows the order service's reason instead of lines", async () => {
    await deployed(mc, 'quiet');
    await render(mc, '/maxcloud/services/App/quiet');
    const alert = await screen.findByTestId('logs-unavailable', {}, { timeout: 10_000 });
    expect(alert).toHaveTextContent('no cluster is connected: there are no container logs to read');
    expect(screen.queryByTestId('log-lines')).toBeNull();
    // the revisions come from the order service's own records: shown all the same
    const table = await screen.findByTestId('revisions', {}, { timeout: 10_000 });
    expect(within(table).getAllByTestId('revision').map(r => r.getAttribute('data-name'))).toEqual(['r1']);
  });

  it('says where the traffic goes when an App ordered through the catalog has no named revisions', async () => {
    await mc.client.createOrder({ kind: 'App', name: 'ordered', parameters: { image: 'nginx:1.27' } as any });
    await render(mc, '/maxcloud/services/App/ordered');
    const none = await screen.findByTestId('revisions-none', {}, { timeout: 10_000 });
    expect(none).toHaveTextContent('No named revisions');
    expect(none).toHaveTextContent('Requests go 100% to the latest revision.');
    expect(screen.queryByTestId('revision')).toBeNull();
  });

  it('has neither panel for a resource that is no App', async () => {
    await mc.client.createOrder({ kind: 'Registry', name: 'images', parameters: {} as any });
    await render(mc, '/maxcloud/services/Registry/images');
    const detail = await screen.findByTestId('service-detail', {}, { timeout: 10_000 });
    expect(detail).toHaveTextContent('registries/images.yaml');
    expect(within(detail).queryByText('Revisions')).toBeNull();
    expect(within(detail).queryByText('Logs')).toBeNull();
    expect(within(detail).queryByTestId('logs-follow')).toBeNull();
  });
});
