import { mockServices } from '@backstage/backend-test-utils';
import { MaxcloudClient } from '@maxcloud/backstage-plugin-maxcloud-common';
import {
  createMaxcloudService,
  MaxcloudService,
  readMaxcloudConfig,
} from '@maxcloud/backstage-plugin-maxcloud-node';
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import {
  eventually,
  RunningMaxcloud,
  startMaxcloud,
} from '../../../testing/maxcloudServer';
import {
  expectValidEntity,
  recordingConnection,
} from './__testUtils__/catalog';
import { MaxcloudEntityProvider } from './MaxcloudEntityProvider';

jest.setTimeout(60_000);

/** A well-formed API key that the order service does not know. */
const UNKNOWN_KEY = `mc_${'0'.repeat(48)}`;

describe('MaxcloudEntityProvider against maxcloud-server dev', () => {
  let server: RunningMaxcloud;
  let shop: { slug: string; apiKey: string };
  let blog: { slug: string; apiKey: string };
  const providers: MaxcloudEntityProvider[] = [];

  beforeAll(async () => {
    server = await startMaxcloud();
    shop = await server.register('ops@shop.example', 'Shop Co');
    blog = await server.register('ops@blog.example', 'Blog Co');
  });
  afterEach(async () => {
    await Promise.all(providers.splice(0).map(p => p.stop()));
  });
  afterAll(() => server?.stop());

  const order = async (apiKey: string, name: string) => {
    const { status, body } = await server.call(apiKey, 'POST', '/orders', {
      kind: 'App',
      name,
      parameters: { image: 'nginx:1.27' },
    });
    if (status !== 201)
      throw new Error(`order ${name}: ${status} ${JSON.stringify(body)}`);
    return body;
  };

  const configOf = (
    tenants: Array<{ slug: string; apiKey: string }>,
    catalog?: object,
  ) =>
    mockServices.rootConfig({
      data: {
        app: { baseUrl: 'http://backstage.test' },
        maxcloud: {
          baseUrl: server.url,
          tenants: tenants.map(t => ({
            ...t,
            members: [`group:default/${t.slug}-team`],
          })),
          ...(catalog ? { catalog } : {}),
        },
      },
    });

  function providerFor(
    maxcloud: MaxcloudService,
    extra: { reconnect?: { minMs: number; maxMs: number } } = {},
  ) {
    const logger = mockServices.logger.mock();
    const provider = new MaxcloudEntityProvider({
      maxcloud,
      logger,
      scheduler: mockServices.scheduler.mock(),
      debounceMs: 50,
      ...extra,
    });
    providers.push(provider);
    return { provider, logger };
  }

  const logged = (fn: { mock: { calls: unknown[][] } }) =>
    fn.mock.calls.map(call => String(call[0])).join('\n');

  it("keeps a tenant's last known entities when its key is revoked, and goes on with the others", async () => {
    await order(shop.apiKey, 'one');
    await order(blog.apiKey, 'two');
    // Backstage acts for the blog with a key of its own, which the blog's admin later revokes.
    const created = await server.call(blog.apiKey, 'POST', '/auth/api-keys', {
      name: 'backstage',
    });
    expect(created.status).toBe(201);
    const maxcloud = createMaxcloudService(
      readMaxcloudConfig(
        configOf([shop, { slug: blog.slug, apiKey: created.body.api_key }]),
      ),
    );
    const { provider, logger } = providerFor(maxcloud);
    const recorder = recordingConnection();
    await provider.connect(recorder.connection);

    await provider.refresh();
    expect(recorder.mutations[recorder.mutations.length - 1].type).toBe('full');
    expect(recorder.find('Component', shop.slug, 'one')).toBeDefined();
    expect(recorder.find('Component', blog.slug, 'two')).toBeDefined();

    const revoked = await server.call(
      blog.apiKey,
      'DELETE',
      `/auth/api-keys/${created.body.id}`,
    );
    expect(revoked.status).toBe(204);
    await order(shop.apiKey, 'three');
    await provider.refresh();

    // The shop goes on; the blog's entities stay as last read instead of being deleted.
    expect(recorder.mutations[recorder.mutations.length - 1].type).toBe('full');
    expect(recorder.find('Component', shop.slug, 'three')).toBeDefined();
    expect(recorder.find('Component', shop.slug, 'one')).toBeDefined();
    expect(recorder.find('Component', blog.slug, 'two')).toBeDefined();
    expect(
      recorder.find('Template', 'default', 'maxcloud-order-app'),
    ).toBeDefined();
    expect(logged(logger.error)).toContain(
      `Cannot read the resources of max-cloud tenant ${blog.slug}`,
    );
    expect(logged(logger.error)).toContain(
      'keeping its 1 resources read before',
    );
    expect(logged(logger.error)).not.toContain(`tenant ${shop.slug}`);
  });

  it('removes nothing of a tenant it has never read, and reads the service types from another tenant', async () => {
    const ghost = { slug: 'ghost', apiKey: UNKNOWN_KEY };
    const maxcloud = createMaxcloudService(
      readMaxcloudConfig(configOf([ghost, shop])),
    );
    const { provider, logger } = providerFor(maxcloud);
    const recorder = recordingConnection();
    await provider.connect(recorder.connection);
    await provider.refresh();

    // ghost's entities from before (a previous run) may still be in the catalog: no full mutation.
    const mutation = recorder.mutations[recorder.mutations.length - 1];
    expect(mutation).toMatchObject({ type: 'delta', removed: [] });
    const entities = recorder.lastEntities();
    expect(entities.filter(e => e.kind === 'API')).toHaveLength(5);
    expect(entities.filter(e => e.kind === 'Template')).toHaveLength(5);
    expect(recorder.find('Component', shop.slug, 'one')).toBeDefined();
    expect(entities.some(e => e.metadata.namespace === 'ghost')).toBe(false);
    for (const entity of entities) await expectValidEntity(entity);
    expect(logged(logger.error)).toContain(
      'Cannot read the resources of max-cloud tenant ghost',
    );
    expect(logged(logger.error)).toContain('none read yet');

    // The ghost's template choice is still offered: it is configured.
    const template = recorder.find(
      'Template',
      'default',
      'maxcloud-order-app',
    )!;
    expect((template.spec as any).parameters[0].properties.tenant.enum).toEqual(
      ['ghost', shop.slug],
    );
  });

  it('reads its schedule and the owner of the service types from the configuration', async () => {
    const config = configOf([shop], {
      owner: 'group:default/platform-team',
      schedule: { frequency: { seconds: 30 }, timeout: { seconds: 10 } },
    });
    const scheduler = mockServices.scheduler.mock();
    const provider = MaxcloudEntityProvider.fromConfig(config, {
      maxcloud: createMaxcloudService(readMaxcloudConfig(config)),
      logger: mockServices.logger.mock(),
      scheduler,
    });
    providers.push(provider);
    const recorder = recordingConnection();
    await provider.connect(recorder.connection);
    expect(scheduler.scheduleTask).toHaveBeenCalledWith(
      expect.objectContaining({
        id: 'maxcloud:refresh',
        frequency: { seconds: 30 },
        timeout: { seconds: 10 },
        fn: expect.any(Function),
      }),
    );
    await scheduler.scheduleTask.mock.calls[0][0].fn(
      new AbortController().signal,
    );
    expect(recorder.find('API', 'default', 'maxcloud-app')?.spec?.owner).toBe(
      'group:default/platform-team',
    );
    expect(
      recorder.find('Template', 'default', 'maxcloud-order-app')?.spec?.owner,
    ).toBe('group:default/platform-team');
  });

  it('reopens a broken event stream from the last event it saw', async () => {
    // The order service's own client, with a fetch whose event streams the test can cut like a network would.
    const streams: Array<{
      lastEventId?: string;
      cut: () => void;
      open?: boolean;
    }> = [];
    const cuttable: typeof fetch = async (input, init) => {
      if (!String(input).endsWith('/events')) return fetch(input, init);
      const controller = new AbortController();
      init?.signal?.addEventListener('abort', () => controller.abort(), {
        once: true,
      });
      const headers = (init?.headers ?? {}) as Record<string, string>;
      const stream = {
        lastEventId: headers['last-event-id'],
        cut: () => controller.abort(),
        open: false,
      };
      streams.push(stream);
      const response = await fetch(input, {
        ...init,
        signal: controller.signal,
      });
      // The server answers once it has subscribed: from now on no event is missed.
      stream.open = true;
      return response;
    };
    const base = createMaxcloudService(readMaxcloudConfig(configOf([blog])));
    const maxcloud: MaxcloudService = {
      ...base,
      client: slug =>
        new MaxcloudClient({
          baseUrl: server.api,
          headers: { authorization: `Bearer ${base.tenant(slug).apiKey}` },
          fetch: cuttable,
        }),
    };
    const { provider, logger } = providerFor(maxcloud, {
      reconnect: { minMs: 400, maxMs: 800 },
    });
    const recorder = recordingConnection();
    await provider.connect(recorder.connection);
    await eventually(
      async () => (streams.length === 1 && streams[0].open ? true : undefined),
      'the event stream to open',
    );
    expect(streams[0].lastEventId).toBeUndefined();

    // Nothing but events refreshes here (the scheduler is a mock).
    const first = await order(blog.apiKey, 'first');
    await eventually(
      async () => recorder.find('Component', blog.slug, 'first'),
      'the first App through events',
    );
    await eventually(
      async () =>
        (
          await server.call(blog.apiKey, 'GET', `/orders/${first.id}`)
        ).body.state === 'merged'
          ? true
          : undefined,
      'the first order to be merged',
    );
    await new Promise(ok => setTimeout(ok, 300)); // its last events handled

    streams[0].cut();
    // Placed while the stream is down: only the replay after reopening can tell the provider about it.
    await order(blog.apiKey, 'second');
    await eventually(
      async () => recorder.find('Component', blog.slug, 'second'),
      'the App ordered while the stream was down',
      10_000,
    );
    expect(streams.length).toBeGreaterThanOrEqual(2);
    expect(streams[1].lastEventId).toMatch(/^\d+$/);
    expect(logged(logger.warn)).toContain(
      `The event stream of max-cloud tenant ${blog.slug} failed`,
    );
  });
});
