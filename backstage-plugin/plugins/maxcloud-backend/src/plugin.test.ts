import { mockCredentials, mockServices, startTestBackend } from '@backstage/backend-test-utils';
import request from 'supertest';
import { MaxcloudClient } from '@maxcloud/backstage-plugin-maxcloud-common';
import { maxcloudPlugin } from './plugin';
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import { eventually, RunningMaxcloud, startMaxcloud } from '../../../testing/maxcloudServer';
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import { userInfoOf } from '../../../testing/userInfo';
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import { RunningLoki, startLoki } from '../../../testing/loki';

// Loki's start (its ingester joining the ring) takes up to ~30 s on a busy machine.
jest.setTimeout(120_000);

// Backstage users and their groups, as Backstage's user info service would report them.
const OWNERSHIP: Record<string, string[]> = {
  'user:default/ada': ['user:default/ada', 'group:default/shop-admins'],
  'user:default/bob': ['user:default/bob', 'group:default/shop-team'],
  'user:default/cy': ['user:default/cy', 'group:default/shop-team', 'group:default/bakery'],
  'user:default/eve': ['user:default/eve', 'group:default/strangers'],
};

describe('maxcloud backend plugin against maxcloud-server dev', () => {
  let server: RunningMaxcloud;
  let loki: RunningLoki;
  let shop: { slug: string; apiKey: string };
  let bakery: { slug: string; apiKey: string };
  let app: any;
  const as = (user: string) => mockCredentials.user.header(user);

  beforeAll(async () => {
    // Container logs come from a real Loki: the order service reads them there without a cluster.
    loki = await startLoki();
    server = await startMaxcloud({ env: { MAXCLOUD_LOKI_URL: loki.url } });
    shop = await server.register('ops@shop.example', 'Shop');
    bakery = await server.register('ops@bakery.example', 'Bakery');
    const backend = await startTestBackend({
      features: [
        maxcloudPlugin,
        mockServices.rootConfig.factory({
          data: {
            maxcloud: {
              baseUrl: server.url,
              tenants: [
                {
                  slug: shop.slug,
                  apiKey: shop.apiKey,
                  members: ['group:default/shop-team'],
                  admins: ['group:default/shop-admins'],
                },
                { slug: bakery.slug, apiKey: bakery.apiKey, members: ['group:default/bakery'] },
              ],
            },
          },
        }),
        mockServices.userInfo.mock(userInfoOf(OWNERSHIP)).factory,
      ],
    });
    app = backend.server;
  });
  afterAll(async () => {
    await server?.stop();
    await loki?.stop();
  });

  it('maps the Backstage user to tenants and roles, and never shows a key', async () => {
    const ada = await request(app).get('/api/maxcloud/whoami').set('authorization', as('user:default/ada'));
    expect(ada.status).toBe(200);
    expect(ada.body).toEqual({
      user: 'user:default/ada',
      tenants: [{ slug: shop.slug, role: 'admin', group: 'group:default/shop-admins' }],
      orderServiceUrl: server.url,
    });
    const cy = await request(app).get('/api/maxcloud/whoami').set('authorization', as('user:default/cy'));
    expect(cy.body.tenants.map((t: any) => [t.slug, t.role])).toEqual([
      [bakery.slug, 'member'],
      [shop.slug, 'member'],
    ]);
    expect(JSON.stringify([ada.body, cy.body])).not.toContain('mc_');
  });

  it('refuses callers without a Backstage user token, or without a tenant', async () => {
    const anonymous = await request(app)
      .get('/api/maxcloud/catalog')
      .set('authorization', mockCredentials.none.header());
    expect(anonymous.status).toBe(401);
    // Backstage's own auth layer answers before the plugin, in Backstage's error shape.
    expect(anonymous.body.error.name).toBe('AuthenticationError');
    const service = await request(app)
      .get('/api/maxcloud/catalog')
      .set('authorization', mockCredentials.service.header());
    // Another plugin's own service token is no user: the tenant mapping needs a Backstage user.
    expect(service.status).toBe(403);
    expect(service.body.error.code).toBe('forbidden');
    const eve = await request(app).get('/api/maxcloud/resources').set('authorization', as('user:default/eve'));
    expect(eve.status).toBe(403);
    expect(eve.body.error.message).toContain('acts for no max-cloud tenant');
    const wrongTenant = await request(app)
      .get('/api/maxcloud/resources')
      .set('authorization', as('user:default/bob'))
      .set('x-maxcloud-tenant', bakery.slug);
    expect(wrongTenant.status).toBe(403);
    expect(wrongTenant.body.error).toMatchObject({ code: 'forbidden', field: 'x-maxcloud-tenant' });
  });

  it('orders for the tenant, with the order service judging the input', async () => {
    const bad = await request(app)
      .post('/api/maxcloud/orders')
      .set('authorization', as('user:default/bob'))
      .send({ kind: 'App', name: 'shop', parameters: { image: 'nginx', scaling: { maxScale: 0 } } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.field).toBe('parameters.scaling.maxScale');
    const malformed = await request(app)
      .post('/api/maxcloud/orders')
      .set('authorization', as('user:default/bob'))
      .set('content-type', 'application/json')
      .send('{"kind": ');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('malformed_request');
    expect((await server.call(shop.apiKey, 'GET', '/orders')).body).toEqual([]);

    const placed = await request(app)
      .post('/api/maxcloud/orders')
      .set('authorization', as('user:default/bob'))
      .set('idempotency-key', 'backstage-1')
      .send({ kind: 'App', name: 'shop', parameters: { image: 'nginx:1.27' } });
    expect(placed.status).toBe(201);
    expect(placed.body).toMatchObject({ tenant: shop.slug, kind: 'App', name: 'shop', state: 'accepted' });
    // The order service records the Backstage user beside the key's user.
    expect(placed.body.requester).toBe('ops@shop.example for user:default/bob');
    const replay = await request(app)
      .post('/api/maxcloud/orders')
      .set('authorization', as('user:default/bob'))
      .set('idempotency-key', 'backstage-1')
      .send({ kind: 'App', name: 'shop', parameters: { image: 'nginx:1.27' } });
    expect(replay.body.id).toBe(placed.body.id);
    // The order is the shop's, not the bakery's, and the bakery's member sees only the bakery's.
    expect((await server.call(shop.apiKey, 'GET', '/orders')).body.map((o: any) => o.id)).toEqual([placed.body.id]);
    const cyBakery = await request(app)
      .get('/api/maxcloud/orders')
      .set('authorization', as('user:default/cy'));
    expect(cyBakery.status).toBe(200);
    expect(cyBakery.body).toEqual([]);
    const cyShop = await request(app)
      .get('/api/maxcloud/orders')
      .query({ tenant: shop.slug })
      .set('authorization', as('user:default/cy'));
    expect(cyShop.body.map((o: any) => o.id)).toEqual([placed.body.id]);
  });

  it('lets only tenant admins approve, reject and change policies', async () => {
    const set = await request(app)
      .put('/api/maxcloud/policies/App/create')
      .set('authorization', as('user:default/bob'))
      .send({ policy: 'review' });
    expect(set.status).toBe(403);
    expect(set.body.error.message).toContain('admin role');
    const byAdmin = await request(app)
      .put('/api/maxcloud/policies/App/create')
      .set('authorization', as('user:default/ada'))
      .send({ policy: 'review' });
    expect(byAdmin.status).toBe(200);
    const order = await request(app)
      .post('/api/maxcloud/orders')
      .set('authorization', as('user:default/bob'))
      .send({ kind: 'App', name: 'reviewed', parameters: { image: 'nginx:1.27' } });
    expect(order.status).toBe(201);
    const approveByMember = await request(app)
      .post(`/api/maxcloud/orders/${order.body.id}/approve`)
      .set('authorization', as('user:default/bob'));
    expect(approveByMember.status).toBe(403);
    // Approve once the pull request waits for review (until then there is nothing to approve on).
    await eventually(async () => {
      const { body } = await server.call(shop.apiKey, 'GET', `/orders/${order.body.id}`);
      return body.pull_request?.review_state === 'pending' ? body : undefined;
    }, 'the pull request to wait for review');
    const approved = await request(app)
      .post(`/api/maxcloud/orders/${order.body.id}/approve`)
      .set('authorization', as('user:default/ada'));
    expect(approved.status).toBe(200);
    expect(approved.body.pull_request.reviewed_by.length).toBeGreaterThan(0);
  });

  it('reaches only the forwarded endpoints', async () => {
    const keys = await request(app).post('/api/maxcloud/auth/api-keys').set('authorization', as('user:default/ada')).send({ name: 'x' });
    expect(keys.status).toBe(404);
    expect(keys.body.error.code).toBe('not_found');
  });
  it('streams the tenant\'s events to the same client the browser uses', async () => {
    const { port } = app.address();
    const client = new MaxcloudClient({
      baseUrl: `http://127.0.0.1:${port}/api/maxcloud`,
      headers: { authorization: as('user:default/cy') },
    }).forTenant(bakery.slug);
    const abort = new AbortController();
    const states: string[] = [];
    let orderId = '';
    const stream = (async () => {
      for await (const event of client.events({ signal: abort.signal })) {
        if (event.type === 'order' && event.data.order_id === orderId) states.push(event.data.state);
        if (states.includes('merged')) return;
      }
    })();
    await new Promise(ok => setTimeout(ok, 300));
    const placed = await client.createOrder({ kind: 'App', name: 'bread', parameters: { image: 'nginx:1.27' } });
    orderId = placed.id;
    expect(placed.tenant).toBe(bakery.slug);
    await Promise.race([stream, new Promise((_, fail) => setTimeout(() => fail(new Error('no merged event')), 15_000))]);
    abort.abort();
    expect(states).toEqual(expect.arrayContaining(['pr_open', 'merged']));
  });

  it('shows quotas, secret names and revisions to members; the invoice only to admins', async () => {
    const created = await server.call(shop.apiKey, 'POST', '/services', { name: 'quoted', image: 'nginx:1.27' });
    expect(created.status).toBe(201);
    const quotas = await request(app).get('/api/maxcloud/quotas').set('authorization', as('user:default/bob'));
    expect(quotas.status).toBe(200);
    expect(quotas.body.tenant).toBe(shop.slug);
    expect(quotas.body.used.services).toBeGreaterThanOrEqual(1);
    const revisions = await request(app)
      .get(`/api/maxcloud/services/${created.body.id}/revisions`)
      .set('authorization', as('user:default/bob'));
    expect(revisions.status).toBe(200);
    expect(revisions.body.revisions.map((r: any) => [r.name, r.latest])).toEqual([['r1', true]]);

    expect((await server.call(shop.apiKey, 'PUT', '/secrets/api-token', { data: { TOKEN: 'tok-s3cr3t' } })).status).toBe(201);
    const secrets = await request(app).get('/api/maxcloud/secrets').set('authorization', as('user:default/bob'));
    expect(secrets.status).toBe(200);
    expect(secrets.body.map((x: any) => [x.name, x.keys])).toEqual([['api-token', ['TOKEN']]]);
    expect(secrets.text).not.toContain('tok-s3cr3t');
    // reading is all: setting a secret, or anything else of it, is not reachable through Backstage
    for (const [method, path] of [
      ['put', '/api/maxcloud/secrets/api-token'],
      ['get', '/api/maxcloud/secrets/api-token'],
      ['delete', '/api/maxcloud/secrets/api-token'],
      ['get', '/api/maxcloud/audit'],
    ] as const) {
      const refused = await request(app)[method](path).set('authorization', as('user:default/ada')).send({ data: { TOKEN: 'x' } });
      expect([path, refused.status]).toEqual([path, 404]);
    }

    // The tenant's key is an admin key, so the plugin itself keeps members away from billing data.
    const byMember = await request(app).get('/api/maxcloud/usage/invoice').set('authorization', as('user:default/bob'));
    expect(byMember.status).toBe(403);
    expect(byMember.body.error).toMatchObject({ code: 'forbidden' });
    expect(byMember.body.error.message).toContain('admin role');
    expect(byMember.text).not.toContain('gross');
    const byAdmin = await request(app)
      .get('/api/maxcloud/usage/invoice?month=2026-01')
      .set('authorization', as('user:default/ada'));
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.body).toMatchObject({ tenant: shop.slug, month: '2026-01', final: true, net: '0.00' });
  });

  it("streams an App's logs through the backend as they are printed", async () => {
    const { port } = app.address();
    const client = new MaxcloudClient({
      baseUrl: `http://127.0.0.1:${port}/api/maxcloud`,
      headers: { authorization: as('user:default/bob') },
    });
    const created = await server.call(shop.apiKey, 'POST', '/services', { name: 'logger', image: 'nginx:1.27' });
    expect(created.status).toBe(201);
    const stream = { namespace: `mc-${shop.slug}`, pod: 'logger-r1-deployment-7f9c', app: 'logger', revision: 'logger-r1' };
    const t0 = Date.now() - 10_000;
    await loki.push({ ...stream, values: [[t0, 'booting'], [t0 + 1, 'listening on :8080'], [t0 + 2, 'GET / 200']] });
    // another container of the pod (Knative's queue-proxy) is not the App's output
    await loki.push({ ...stream, container: 'queue-proxy', values: [[t0 + 3, 'proxy noise']] });

    // without follow: the last `tail` lines, then the stream ends
    const tail: string[] = [];
    for await (const line of client.logs(created.body.id, { tail: 2 })) tail.push(line.line);
    expect(tail).toEqual(['listening on :8080', 'GET / 200']);

    // with follow: the tail, then each new line while the stream stays open
    const abort = new AbortController();
    const seen: any[] = [];
    const following = (async () => {
      for await (const line of client.logs(created.body.id, { tail: 1, follow: true, signal: abort.signal })) {
        seen.push(line);
        if (line.line === 'POST /cart 201') return;
      }
    })();
    await eventually(async () => (seen.length === 1 ? true : undefined), 'the tail of the followed stream');
    expect(seen[0]).toMatchObject({ line: 'GET / 200', pod: stream.pod, revision: 'logger-r1', container: 'user-container' });
    await loki.push({ ...stream, values: [[Date.now(), 'POST /cart 201']] });
    await Promise.race([following, new Promise((_, fail) => setTimeout(() => fail(new Error('no followed line')), 20_000))]);
    expect(seen.map(l => l.line)).toEqual(['GET / 200', 'POST /cart 201']);
    expect(Date.parse(seen[1].time)).toBeGreaterThan(t0);
    abort.abort();

    // a refusal of the order service passes through in its shape
    const bad = await request(app)
      .get(`/api/maxcloud/services/${created.body.id}/logs?tail=0`)
      .set('authorization', as('user:default/bob'));
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('tail');
  });
});
