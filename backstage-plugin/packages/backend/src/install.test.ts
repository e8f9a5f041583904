/**
 * The whole Backstage side, installed as an app installs it, against a real `maxcloud-server dev`: the real
 * catalog and scaffolder backends with the max-cloud modules, and the max-cloud backend plugin. A Software
 * Template generated from the catalog orders an App through the scaffolder; the order lands in the tenant's
 * repository; the resource shows up in the Backstage catalog.
 */
import { mockCredentials, mockServices, startTestBackend } from '@backstage/backend-test-utils';
import request from 'supertest';
import { features } from './features';
import { eventually, RunningMaxcloud, startMaxcloud } from '../../../testing/maxcloudServer';
import { userInfoOf } from '../../../testing/userInfo';

jest.setTimeout(120_000);

const JANE = 'user:default/jane';

/**
 * The catalog's and scaffolder's database: the PostgreSQL that scripts/test.sh starts (MAXCLOUD_TEST_POSTGRES_URL),
 * with a fresh prefix so every run gets its own databases. (better-sqlite3 crashes the Jest process when its
 * statements are finalised after the test environment is gone.)
 */
function database() {
  const url = process.env.MAXCLOUD_TEST_POSTGRES_URL;
  if (!url) throw new Error('MAXCLOUD_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts PostgreSQL 15');
  return { client: 'pg', connection: url, prefix: `bs${Date.now().toString(36)}_` };
}

describe('a Backstage backend with the max-cloud plugins', () => {
  let server: RunningMaxcloud;
  let tenant: { slug: string; apiKey: string };
  let backend: Awaited<ReturnType<typeof startTestBackend>>;

  beforeAll(async () => {
    server = await startMaxcloud();
    tenant = await server.register('portal@shop.example', 'Shop');
    backend = await startTestBackend({
      features: [
        ...features,
        mockServices.rootConfig.factory({
          data: {
            app: { baseUrl: 'http://localhost:3000' },
            backend: { baseUrl: 'http://localhost:7007', database: database() },
            catalog: { rules: [{ allow: ['Component', 'API', 'Resource', 'Template', 'Group', 'User', 'Location'] }] },
            maxcloud: {
              baseUrl: server.url,
              tenants: [{ slug: tenant.slug, apiKey: tenant.apiKey, members: ['group:default/shop-team'] }],
              catalog: { schedule: { frequency: { seconds: 5 }, timeout: { seconds: 30 } } },
            },
          },
        }),
        mockServices.userInfo.mock(userInfoOf({ [JANE]: [JANE, 'group:default/shop-team'] })).factory,
      ],
    });
  });
  afterAll(async () => {
    await backend?.stop();
    await server?.stop();
  });

  const get = (path: string) => request(backend.server).get(path).set('authorization', mockCredentials.user.header(JANE));

  it('orders an App through the generated Software Template and shows it in the catalog', async () => {
    // The entity provider publishes one API and one Template per service type.
    const template = await eventually(async () => {
      const res = await get('/api/catalog/entities/by-name/template/default/maxcloud-order-app');
      return res.status === 200 ? res.body : undefined;
    }, 'the generated App template in the catalog', 60_000);
    expect(template.spec.steps[0].action).toBe('maxcloud:order:create');
    const api = await get('/api/catalog/entities/by-name/api/default/maxcloud-app');
    expect(api.status).toBe(200);

    // The scaffolder knows the action.
    const actions = await get('/api/scaffolder/v2/actions');
    expect(actions.body.map((a: any) => a.id)).toContain('maxcloud:order:create');

    // Jane runs the template.
    const created = await request(backend.server)
      .post('/api/scaffolder/v2/tasks')
      .set('authorization', mockCredentials.user.header(JANE))
      .send({
        templateRef: 'template:default/maxcloud-order-app',
        values: { name: 'web', tenant: tenant.slug, image: 'nginx:1.27' },
      });
    expect(created.status).toBe(201);
    const task = await eventually(async () => {
      const res = await get(`/api/scaffolder/v2/tasks/${created.body.id}`);
      return ['completed', 'failed'].includes(res.body.status) ? res.body : undefined;
    }, 'the scaffolder task to finish', 60_000);
    if (task.status !== 'completed') {
      const log = await get(`/api/scaffolder/v2/tasks/${created.body.id}/events`);
      throw new Error(`task ${task.status}: ${JSON.stringify(log.body).slice(0, 3000)}`);
    }

    // The order is in the order service, placed for the tenant.
    const orders = (await server.call(tenant.apiKey, 'GET', '/orders')).body;
    expect(orders).toEqual([expect.objectContaining({ kind: 'App', name: 'web', tenant: tenant.slug })]);
    const order = orders[0];
    expect(order.requester).toBe(`portal@shop.example for ${JANE}`);
    const events = (await get(`/api/scaffolder/v2/tasks/${created.body.id}/events`)).body;
    const completion = events.find((e: any) => e.type === 'completion');
    expect(completion.body.output.links ?? []).toEqual(
      expect.arrayContaining([expect.objectContaining({ url: `http://localhost:3000/maxcloud/orders/${order.id}` })]),
    );

    // The resource becomes a Component of the tenant's namespace, owned by the tenant's group.
    const component = await eventually(async () => {
      const res = await get(`/api/catalog/entities/by-name/component/${tenant.slug}/web`);
      return res.status === 200 ? res.body : undefined;
    }, 'the App as a catalog Component', 60_000);
    expect(component.spec.owner).toBe('group:default/shop-team');
    expect(component.metadata.annotations['maxcloud.dev/resource']).toBe('App/web');

    // The browser's path works in the same backend.
    const whoami = await get('/api/maxcloud/whoami');
    expect(whoami.body.tenants).toEqual([expect.objectContaining({ slug: tenant.slug, role: 'member' })]);
  });
});
