import { randomUUID } from 'node:crypto';
import { mockCredentials, mockServices } from '@backstage/backend-test-utils';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import {
  createMaxcloudService,
  readMaxcloudConfig,
} from '@maxcloud/backstage-plugin-maxcloud-node';
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import {
  eventually,
  RunningMaxcloud,
  startMaxcloud,
} from '../../../../testing/maxcloudServer';
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import { userInfoOf } from '../../../../testing/userInfo';
import { createMaxcloudOrderAction, idempotencyKeyOf } from './orderCreate';

jest.setTimeout(60_000);

const APP_BASE_URL = 'http://backstage.test';

/** Who belongs to which group, as the catalog would say. */
const OWNERSHIP: Record<string, string[]> = {
  'user:default/jane': ['user:default/jane', 'group:default/shop-team'],
  'user:default/olga': [
    'user:default/olga',
    'group:default/shop-team',
    'group:default/blog-team',
  ],
  'user:default/mallory': ['user:default/mallory', 'group:default/guests'],
};

const userInfo = userInfoOf(OWNERSHIP);

describe('maxcloud:order:create against maxcloud-server dev', () => {
  let server: RunningMaxcloud;
  let shop: { slug: string; apiKey: string };
  let blog: { slug: string; apiKey: string };
  let action: ReturnType<typeof createMaxcloudOrderAction>;

  beforeAll(async () => {
    server = await startMaxcloud();
    shop = await server.register('ops@shop.example', 'Shop Co');
    blog = await server.register('ops@blog.example', 'Blog Co');
    const config = mockServices.rootConfig({
      data: {
        app: { baseUrl: `${APP_BASE_URL}/` },
        maxcloud: {
          baseUrl: server.url,
          tenants: [
            {
              slug: shop.slug,
              apiKey: shop.apiKey,
              members: ['group:default/shop-team'],
            },
            {
              slug: blog.slug,
              apiKey: blog.apiKey,
              members: ['group:default/blog-team'],
            },
          ],
        },
      },
    });
    action = createMaxcloudOrderAction({
      maxcloud: createMaxcloudService(readMaxcloudConfig(config)),
      userInfo,
      config,
      pollIntervalMs: 50,
    });
  });
  afterAll(() => server?.stop());

  /** A step of a task run by `user`, with the outputs it set. */
  function step(
    input: Record<string, unknown>,
    options: { user?: string; taskId?: string; isDryRun?: boolean } = {},
  ) {
    const base = createMockActionContext({
      input: input as any,
      task: { id: options.taskId ?? randomUUID() },
    });
    const ctx = {
      ...base,
      isDryRun: options.isDryRun,
      getInitiatorCredentials: async () =>
        mockCredentials.user(options.user ?? 'user:default/jane'),
    };
    const outputs = () =>
      Object.fromEntries((ctx.output as jest.Mock).mock.calls);
    return { ctx, outputs, run: () => action.handler(ctx) };
  }

  const ordersOf = async (apiKey: string) =>
    (await server.call(apiKey, 'GET', '/orders')).body as any[];

  it('orders an App for the user’s only tenant and ends when its pull request is open', async () => {
    const { run, outputs } = step({
      kind: 'App',
      name: 'shop',
      parameters: { image: 'nginx:1.27' },
    });
    await run();
    const out = outputs();
    expect(out.orderId).toMatch(/^[0-9a-f-]{36}$/);
    expect(['pr_open', 'merged', 'applied', 'ready']).toContain(out.state);
    // The embedded Git provider has no web pages: the pull request is shown on the portal's order page.
    expect(out.orderUrl).toBe(`${APP_BASE_URL}/maxcloud/orders/${out.orderId}`);
    expect(out.pullRequestUrl).toBe(out.orderUrl);
    expect(out).not.toHaveProperty('resourceUrl');
    expect(out.entityRef).toBe(`component:${shop.slug}/shop`);

    const { status, body: order } = await server.call(
      shop.apiKey,
      'GET',
      `/orders/${out.orderId}`,
    );
    expect(status).toBe(200);
    expect(order).toMatchObject({
      tenant: shop.slug,
      kind: 'App',
      name: 'shop',
      action: 'create',
    });
    expect(order.parameters).toMatchObject({ image: 'nginx:1.27', port: 8080 });
    expect(order.pull_request).toMatchObject({ number: expect.any(Number) });
    expect(order.idempotency_key).toMatch(/^backstage:/);
    // Ordered with the tenant's key, for the Backstage user who ran the template.
    expect(order.requester).toBe('ops@shop.example for user:default/jane');
  });

  it('waits until a reviewed order is merged (wait: merged)', async () => {
    const { run, outputs } = step({
      kind: 'Database',
      name: 'shop-db',
      tenant: shop.slug,
      wait: 'merged',
    });
    const running = run();
    // Databases need review: the order waits in pr_open until an admin approves it.
    const pending = await eventually(async () => {
      const orders = await ordersOf(shop.apiKey);
      return orders.find(
        o => o.name === 'shop-db' && o.pull_request?.review_state === 'pending',
      );
    }, 'the database order to wait for review');
    expect(pending.state).toBe('pr_open');
    let settled = false;
    running.finally(() => (settled = true)).catch(() => {});
    await new Promise(ok => setTimeout(ok, 300));
    expect(settled).toBe(false);

    const approved = await server.call(
      shop.apiKey,
      'POST',
      `/orders/${pending.id}/approve`,
      {},
    );
    expect(approved.status).toBe(200);
    await running;
    expect(outputs()).toMatchObject({
      orderId: pending.id,
      state: 'merged',
      entityRef: `resource:${shop.slug}/database-shop-db`,
    });
  });

  it('fails the step when the order is rejected', async () => {
    const { run } = step({ kind: 'Registry', name: 'images', wait: 'merged' });
    const running = run();
    const pending = await eventually(async () => {
      const orders = await ordersOf(shop.apiKey);
      return orders.find(o => o.name === 'images' && o.state === 'pr_open');
    }, 'the registry order to open its pull request');
    // Caught before the rejection, so the step's failure is never an unhandled rejection in between.
    const failure = running.then(
      () => undefined,
      (e: Error) => e,
    );
    await server.call(shop.apiKey, 'POST', `/orders/${pending.id}/reject`, {
      reason: 'use the shared registry',
    });
    expect((await failure)?.message).toMatch(
      /^Order .+ was rejected: .*use the shared registry/,
    );
  });

  it('fails the step when the order does not get far enough in time', async () => {
    // Without a cluster an App stops at merged: it never becomes ready.
    const { run, outputs } = step({
      kind: 'App',
      name: 'never-ready',
      parameters: { image: 'nginx:1.27' },
      wait: 'ready',
      timeoutSeconds: 1,
    });
    await expect(run()).rejects.toThrow(
      /is still merged after 1 s .*ready.*\/maxcloud\/orders\//,
    );
    expect(outputs().orderId).toBeDefined();
  });

  it('turns invalid parameters into an input error naming the field, and orders nothing', async () => {
    const { run } = step({
      kind: 'App',
      name: 'bad-scaling',
      parameters: { image: 'nginx:1.27', scaling: { maxScale: 0 } },
    });
    const error = await run().catch(e => e);
    expect(error.name).toBe('InputError');
    expect(error.message).toBe(
      'parameters.scaling.maxScale: must be greater than or equal to 1',
    );
    expect(
      (await ordersOf(shop.apiKey)).filter(o => o.name === 'bad-scaling'),
    ).toEqual([]);

    const several = await step({
      kind: 'App',
      name: 'bad-scaling',
      parameters: { port: 0, scaling: { maxScale: 0 } },
    })
      .run()
      .catch(e => e);
    expect(several.name).toBe('InputError');
    expect(several.message).toBe(
      'parameters.image: is required; parameters.port: must be greater than or equal to 1; ' +
        'parameters.scaling.maxScale: must be greater than or equal to 1',
    );

    const unknownKind = await step({ kind: 'Mainframe', name: 'big' })
      .run()
      .catch(e => e);
    expect(unknownKind.name).toBe('InputError');
    expect(unknownKind.message).toMatch(/^kind: unknown kind "Mainframe"/);

    const badName = await step({
      kind: 'App',
      name: 'Not_A_Label',
      parameters: { image: 'nginx' },
    })
      .run()
      .catch(e => e);
    expect(badName.name).toBe('InputError');
    expect(badName.message).toMatch(
      /^name: "Not_A_Label" is not a DNS-1123 label/,
    );
  });

  it('refuses users who do not belong to the tenant', async () => {
    const before = (await ordersOf(shop.apiKey)).length;
    const stranger = await step(
      {
        kind: 'App',
        name: 'intruder',
        tenant: shop.slug,
        parameters: { image: 'nginx' },
      },
      { user: 'user:default/mallory' },
    )
      .run()
      .catch(e => e);
    expect(stranger.name).toBe('NotAllowedError');
    expect(stranger.message).toContain(
      `may not order for max-cloud tenant ${shop.slug}`,
    );
    expect(stranger.message).toContain('user:default/mallory');

    // jane is in the shop team, not the blog team.
    const wrongTenant = await step({
      kind: 'App',
      name: 'intruder',
      tenant: blog.slug,
      parameters: { image: 'nginx' },
    })
      .run()
      .catch(e => e);
    expect(wrongTenant.name).toBe('NotAllowedError');
    expect(wrongTenant.message).toContain(`tenant ${blog.slug}`);

    const noTenant = await step(
      { kind: 'App', name: 'intruder', parameters: { image: 'nginx' } },
      { user: 'user:default/mallory' },
    )
      .run()
      .catch(e => e);
    expect(noTenant.name).toBe('NotAllowedError');
    expect(noTenant.message).toContain('belongs to no max-cloud tenant');

    expect((await ordersOf(shop.apiKey)).length).toBe(before);
    expect(
      (await ordersOf(blog.apiKey)).filter(o => o.name === 'intruder'),
    ).toEqual([]);
  });

  it('asks users of several tenants to choose one, and orders for the chosen one', async () => {
    const ambiguous = await step(
      { kind: 'App', name: 'olgas', parameters: { image: 'nginx' } },
      { user: 'user:default/olga' },
    )
      .run()
      .catch(e => e);
    expect(ambiguous.name).toBe('InputError');
    expect(ambiguous.message).toBe(
      `tenant: user:default/olga may order for several max-cloud tenants (${[
        blog.slug,
        shop.slug,
      ].join(', ')}); choose one`,
    );
    const chosen = step(
      {
        kind: 'App',
        name: 'olgas',
        tenant: blog.slug,
        parameters: { image: 'nginx' },
        wait: 'none',
      },
      { user: 'user:default/olga' },
    );
    await chosen.run();
    const { body: order } = await server.call(
      blog.apiKey,
      'GET',
      `/orders/${chosen.outputs().orderId}`,
    );
    expect(order).toMatchObject({ tenant: blog.slug, name: 'olgas' });
  });

  it('gives a retried step the order it placed before', async () => {
    const taskId = randomUUID();
    const input = {
      kind: 'App',
      name: 'retried',
      parameters: { image: 'nginx:1.27' },
    };
    const first = step(input, { taskId });
    await first.run();
    const again = step(input, { taskId });
    await again.run();
    expect(again.outputs().orderId).toBe(first.outputs().orderId);
    expect(
      (await ordersOf(shop.apiKey)).filter(o => o.name === 'retried'),
    ).toHaveLength(1);
  });

  it('orders nothing in a dry run, but checks the kind and the tenant', async () => {
    const before = await ordersOf(shop.apiKey);
    const { run, outputs } = step(
      { kind: 'App', name: 'dry', parameters: { image: 'nginx:1.27' } },
      { isDryRun: true },
    );
    await run();
    expect(outputs()).toEqual({
      orderId: 'dry-run',
      state: 'dry-run',
      pullRequestUrl: `${APP_BASE_URL}/maxcloud/orders`,
      orderUrl: `${APP_BASE_URL}/maxcloud/orders`,
      entityRef: `component:${shop.slug}/dry`,
    });
    expect(await ordersOf(shop.apiKey)).toEqual(before);

    const unknown = await step(
      { kind: 'Mainframe', name: 'dry' },
      { isDryRun: true },
    )
      .run()
      .catch(e => e);
    expect(unknown.name).toBe('InputError');
    expect(unknown.message).toMatch(/^kind: .*Mainframe/);
    const stranger = await step(
      { kind: 'App', name: 'dry' },
      { isDryRun: true, user: 'user:default/mallory' },
    )
      .run()
      .catch(e => e);
    expect(stranger.name).toBe('NotAllowedError');
  });
});

describe('idempotencyKeyOf', () => {
  it('is stable per task, step, kind and name, and fits the header', () => {
    expect(idempotencyKeyOf('t1', 'order', 'App', 'shop')).toBe(
      'backstage:t1:order:app/shop',
    );
    expect(idempotencyKeyOf('t1', 'order', 'App', 'shop')).not.toBe(
      idempotencyKeyOf('t1', 'order', 'App', 'blog'),
    );
    const long = idempotencyKeyOf(
      't'.repeat(300),
      'step with spaces',
      'App',
      'shop',
    );
    expect(long).toMatch(/^backstage:[0-9a-f]{64}$/);
  });
});
