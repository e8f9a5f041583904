import { MaxcloudClient } from './client';
import { MaxcloudApiError } from './errors';
import { MaxcloudEvent } from './types';
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import { RunningMaxcloud, startMaxcloud } from '../../../testing/maxcloudServer';

describe('MaxcloudClient against maxcloud-server dev', () => {
  let server: RunningMaxcloud;
  let client: MaxcloudClient;

  beforeAll(async () => {
    server = await startMaxcloud();
    const { apiKey } = await server.register('ops@example.com', 'Client Co');
    client = new MaxcloudClient({ baseUrl: server.api, headers: { authorization: `Bearer ${apiKey}` } });
  });
  afterAll(() => server?.stop());

  it('reads the catalog generated from the XRDs', async () => {
    const catalog = await client.catalog();
    expect(catalog.map(e => e.kind).sort()).toEqual(['App', 'DNSRecord', 'Database', 'Registry', 'Workspace']);
    const app = await client.catalogEntry('apps');
    expect(app.kind).toBe('App');
    expect((app.schema as any).properties.image.type).toBe('string');
    expect(app.ui_order[0]).toBe('image');
    expect(app.price).toMatchObject({ currency: 'EUR', monthly_min: '0.00' });
    const estimate = await client.estimate('App', { image: 'nginx', scaling: { minScale: 1, maxScale: 1 } });
    expect(estimate.monthly_min).toBe(estimate.monthly_max);
    expect(Number(estimate.monthly_min)).toBeGreaterThan(0);
  });

  it('places an order, follows it on the event stream and finds the resource', async () => {
    const abort = new AbortController();
    const seen: MaxcloudEvent[] = [];
    const stream = (async () => {
      for await (const event of client.events({ signal: abort.signal })) {
        seen.push(event);
        if (event.type === 'order' && event.data.state === 'merged') break;
      }
    })();
    const order = await client.createOrder(
      { kind: 'App', name: 'shop', parameters: { image: 'nginx:1.27' } },
      { idempotencyKey: 'client-test-1' },
    );
    expect(order.state).toBe('accepted');
    expect(order.parameters).toMatchObject({ image: 'nginx:1.27', port: 8080 });
    await stream;
    abort.abort();
    const states = seen.flatMap(e => (e.type === 'order' && e.data.order_id === order.id ? [e.data.state] : []));
    expect(states).toEqual(['accepted', 'pr_open', 'merged']);
    expect(seen.every(e => e.id !== undefined)).toBe(true);

    const replay = await client.createOrder(
      { kind: 'App', name: 'shop', parameters: { image: 'nginx:1.27' } },
      { idempotencyKey: 'client-test-1' },
    );
    expect(replay.id).toBe(order.id);
    const merged = await client.order(order.id);
    expect(merged.pull_request?.merge_policy).toBe('auto');
    expect(merged.history.map(h => h.state)).toEqual(['accepted', 'pr_open', 'merged']);
    const resources = await client.resources();
    expect(resources).toEqual([expect.objectContaining({ kind: 'App', name: 'shop', path: 'apps/shop.yaml' })]);
    expect((await client.orders()).map(o => o.id)).toContain(order.id);

    // Replaying from an event id gives the events after it, in order.
    const first = seen[0].id!;
    const again: string[] = [];
    const replayAbort = new AbortController();
    for await (const event of client.events({ signal: replayAbort.signal, lastEventId: first })) {
      if (event.type === 'order') again.push(event.data.state);
      if (again.length === 2) break;
    }
    replayAbort.abort();
    expect(again).toEqual(['pr_open', 'merged']);
  });

  it('turns error answers into MaxcloudApiError with the field', async () => {
    const error = await client
      .createOrder({ kind: 'App', name: 'bad', parameters: { image: 'nginx', scaling: { maxScale: 0 } } })
      .catch(e => e);
    expect(error).toBeInstanceOf(MaxcloudApiError);
    expect(error).toMatchObject({ status: 422, code: 'invalid_parameters', field: 'parameters.scaling.maxScale' });
    const several = await client
      .createOrder({ kind: 'App', name: 'bad', parameters: { port: 0, scaling: { maxScale: 0 } } })
      .catch(e => e);
    expect(several.fields.map((f: any) => f.field)).toEqual([
      'parameters.image',
      'parameters.port',
      'parameters.scaling.maxScale',
    ]);
    await expect(client.catalogEntry('nope')).rejects.toMatchObject({ status: 404, code: 'not_found' });
    const anonymous = new MaxcloudClient({ baseUrl: server.api });
    await expect(anonymous.resources()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    const broken = new MaxcloudClient({ baseUrl: `${server.url}/healthz-nope` });
    await expect(broken.catalog()).rejects.toBeInstanceOf(MaxcloudApiError);
  });
});
