import {
  mockServices,
  startTestBackend,
  TestBackend,
} from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';
import {
  catalogProcessingExtensionPoint,
  EntityProvider,
} from '@backstage/plugin-catalog-node';
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
import catalogModuleMaxcloud from './index';

jest.setTimeout(60_000);

const DNS_LABEL = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';

describe('catalog-backend-module-maxcloud in a backend, against maxcloud-server dev', () => {
  let server: RunningMaxcloud;
  let shop: { slug: string; apiKey: string };
  let blog: { slug: string; apiKey: string };
  const orders: Record<string, string> = {};
  let backend: TestBackend | undefined;
  let provider: EntityProvider;
  const scheduled: Array<{
    id: string;
    frequency: unknown;
    timeout: unknown;
    fn: Function;
  }> = [];
  const recorder = recordingConnection();

  const order = async (
    tenant: { apiKey: string },
    kind: string,
    name: string,
    parameters: object = {},
  ) => {
    const { status, body } = await server.call(
      tenant.apiKey,
      'POST',
      '/orders',
      { kind, name, parameters },
    );
    if (status !== 201)
      throw new Error(
        `order ${kind} ${name}: ${status} ${JSON.stringify(body)}`,
      );
    orders[`${kind}/${name}`] = body.id;
    return body;
  };

  beforeAll(async () => {
    server = await startMaxcloud();
    shop = await server.register('ops@shop.example', 'Shop Co');
    blog = await server.register('ops@blog.example', 'Blog Co');
    await order(shop, 'App', 'shop', { image: 'nginx:1.27' });
    await order(shop, 'Database', 'shop-db');
    await order(blog, 'App', 'blog', { image: 'ghost:5' });
    await order(blog, 'DNSRecord', 'www', {
      name: 'www',
      type: 'CNAME',
      targets: ['blog.example.com'],
    });

    const processing = { addEntityProvider: jest.fn() };
    const scheduler = mockServices.scheduler.mock({
      async scheduleTask(task) {
        scheduled.push(task as any);
      },
    });
    backend = await startTestBackend({
      extensionPoints: [[catalogProcessingExtensionPoint, processing]],
      features: [
        catalogModuleMaxcloud,
        scheduler.factory,
        mockServices.rootConfig.factory({
          data: {
            app: { baseUrl: 'http://backstage.test' },
            maxcloud: {
              baseUrl: server.url,
              tenants: [
                {
                  slug: shop.slug,
                  apiKey: shop.apiKey,
                  members: ['group:default/shop-team'],
                  admins: ['group:default/shop-admins'],
                },
                {
                  slug: blog.slug,
                  apiKey: blog.apiKey,
                  members: ['user:default/bob'],
                  owner: 'blog-team',
                },
              ],
              catalog: { owner: 'group:default/platform' },
            },
          },
        }),
      ],
    });
    const added = processing.addEntityProvider.mock.calls;
    if (added.length !== 1)
      throw new Error(`expected one provider, got ${added.length} calls`);
    provider = added[0][0];
    await provider.connect(recorder.connection);
  });
  afterAll(async () => {
    await backend?.stop();
    await server?.stop();
  });

  it('adds the provider and schedules its refresh every 5 minutes', async () => {
    expect(provider.getProviderName()).toBe('maxcloud');
    expect(scheduled).toEqual([
      expect.objectContaining({
        id: 'maxcloud:refresh',
        frequency: { minutes: 5 },
        timeout: { minutes: 1 },
      }),
    ]);
    await scheduled[0].fn(new AbortController().signal);
    const mutation = recorder.mutations[recorder.mutations.length - 1];
    expect(mutation.type).toBe('full');
    for (const entity of recorder.lastEntities())
      await expectValidEntity(entity);
  });

  it('emits an API entity and an order Template per service type', async () => {
    const catalog = (await server.call(shop.apiKey, 'GET', '/catalog'))
      .body as any[];
    const kinds = catalog.map(e => e.kind).sort();
    expect(kinds).toEqual([
      'App',
      'DNSRecord',
      'Database',
      'Registry',
      'Workspace',
    ]);
    const entities = recorder.last();
    for (const kind of kinds) {
      const api = entities.find(
        d =>
          d.entity.kind === 'API' &&
          d.entity.metadata.name === `maxcloud-${kind.toLowerCase()}`,
      );
      expect(api?.locationKey).toBe('maxcloud:catalog');
      const template = recorder.find(
        'Template',
        'default',
        `maxcloud-order-${kind.toLowerCase()}`,
      );
      expect(template?.metadata.annotations?.['maxcloud.dev/kind']).toBe(kind);
    }

    const app = catalog.find(e => e.kind === 'App');
    const api = recorder.find('API', 'default', 'maxcloud-app')!;
    expect(api.metadata.annotations).toMatchObject({
      'maxcloud.dev/kind': 'App',
      'backstage.io/managed-by-location': `url:${server.url}/api/v1/catalog`,
      'backstage.io/managed-by-origin-location': `url:${server.url}/api/v1/catalog`,
    });
    expect(api.metadata.description).toBe(app.description);
    expect(api.spec).toMatchObject({
      type: 'json-schema',
      lifecycle: 'production',
      owner: 'group:default/platform',
    });
    expect(JSON.parse(api.spec!.definition as string)).toEqual(app.schema);
    expect(api.spec!.definition).toBe(JSON.stringify(app.schema, null, 2));

    const template = recorder.find(
      'Template',
      'default',
      'maxcloud-order-app',
    )!;
    expect(template.apiVersion).toBe('scaffolder.backstage.io/v1beta3');
    expect(template.metadata).toMatchObject({
      title: 'Order App',
      description: app.description,
    });
    expect(template.metadata.tags).toContain('maxcloud');
    const spec = template.spec as any;
    expect(spec.owner).toBe('group:default/platform');
    expect(spec.parameters).toHaveLength(2);
    const [identity, settings] = spec.parameters;
    expect(identity.required).toEqual(['name', 'tenant']);
    expect(identity.properties.name).toMatchObject({
      type: 'string',
      pattern: DNS_LABEL,
    });
    expect(identity.properties.tenant).toMatchObject({
      type: 'string',
      enum: [shop.slug, blog.slug],
    });
    expect(identity.properties.tenant).not.toHaveProperty('default');
    // The App's own parameters, with their titles, defaults and order.
    expect(Object.keys(settings.properties).sort()).toEqual(
      Object.keys(app.schema.properties).sort(),
    );
    expect(settings.properties.image).toMatchObject({
      type: 'string',
      pattern: app.schema.properties.image.pattern,
    });
    expect(settings.properties.port).toMatchObject({
      type: 'integer',
      default: 8080,
      title: 'Port',
    });
    expect(settings.properties.port).not.toHaveProperty('format'); // int32 is not a format forms know
    expect(settings.properties.scaling.properties.maxScale).toMatchObject({
      default: 10,
      minimum: 1,
    });
    expect(settings.required).toEqual(['image']);
    expect(settings['ui:order']).toEqual(app.ui_order);
    expect(settings['ui:order'][0]).toBe('image');

    expect(spec.steps).toEqual([
      {
        id: 'order',
        name: 'Order App',
        action: 'maxcloud:order:create',
        input: {
          kind: 'App',
          name: '${{ parameters.name }}',
          tenant: '${{ parameters.tenant }}',
          parameters: Object.fromEntries(
            Object.keys(app.schema.properties).map(p => [
              p,
              `\${{ parameters.${p} }}`,
            ]),
          ),
        },
      },
    ]);
    expect(spec.output.links).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          url: '${{ steps.order.output.pullRequestUrl }}',
        }),
        expect.objectContaining({
          url: '${{ steps.order.output.resourceUrl }}',
          if: '${{ steps.order.output.resourceUrl | length > 0 }}',
        }),
      ]),
    );

    // A DNSRecord has a parameter called like the resource's name: the form keeps both apart.
    const dns = recorder.find(
      'Template',
      'default',
      'maxcloud-order-dnsrecord',
    )!.spec as any;
    expect(dns.parameters[1].properties).toHaveProperty('dnsrecord_name');
    expect(dns.parameters[1].properties).not.toHaveProperty('name');
    expect(dns.parameters[1].required).toEqual([
      'dnsrecord_name',
      'type',
      'targets',
    ]);
    expect(dns.steps[0].input.name).toBe('${{ parameters.name }}');
    expect(dns.steps[0].input.parameters.name).toBe(
      '${{ parameters.dnsrecord_name }}',
    );
    expect(dns.parameters[1]['ui:order']).toEqual([
      'dnsrecord_name',
      'type',
      'targets',
      'ttl',
      'zone',
    ]);
  });

  it("emits each tenant's resources in the tenant's namespace, owned by its group", async () => {
    const entities = recorder.last();
    const location = `url:${server.url}/api/v1/resources`;

    const shopApp = recorder.find('Component', shop.slug, 'shop')!;
    expect(shopApp.spec).toEqual({
      type: 'service',
      lifecycle: 'production',
      owner: 'group:default/shop-admins',
    });
    expect(shopApp.metadata.annotations).toEqual({
      'maxcloud.dev/resource': 'App/shop',
      'maxcloud.dev/tenant': shop.slug,
      'maxcloud.dev/order-id': orders['App/shop'],
      'maxcloud.dev/status': 'pending',
      'backstage.io/managed-by-location': location,
      'backstage.io/managed-by-origin-location': location,
    });
    expect(shopApp.metadata.links).toEqual([
      {
        url: `http://backstage.test/maxcloud/orders/${orders['App/shop']}`,
        title: 'Last order',
      },
    ]);
    expect(entities.find(d => d.entity === shopApp)?.locationKey).toBe(
      `maxcloud:tenant:${shop.slug}`,
    );

    const db = recorder.find('Resource', shop.slug, 'database-shop-db')!;
    expect(db.spec).toMatchObject({
      type: 'database',
      owner: 'group:default/shop-admins',
    });
    expect(db.metadata.annotations).toMatchObject({
      'maxcloud.dev/resource': 'Database/shop-db',
      'maxcloud.dev/order-id': orders['Database/shop-db'],
    });

    const blogApp = recorder.find('Component', blog.slug, 'blog')!;
    expect(blogApp.spec).toMatchObject({
      type: 'service',
      owner: 'group:default/blog-team',
    });
    const www = recorder.find('Resource', blog.slug, 'dnsrecord-www')!;
    expect(www.spec).toMatchObject({
      type: 'dnsrecord',
      owner: 'group:default/blog-team',
    });
    expect(www.metadata.annotations?.['maxcloud.dev/tenant']).toBe(blog.slug);

    const resources = recorder
      .lastEntities()
      .filter((e: Entity) => e.kind === 'Component' || e.kind === 'Resource');
    expect(resources).toHaveLength(4);
  });

  it('shows an order placed while connected through the event stream, without waiting for the schedule', async () => {
    const before = recorder.mutations.length;
    const placed = await order(blog, 'App', 'news', { image: 'ghost:5' });
    const news = await eventually(
      async () => recorder.find('Component', blog.slug, 'news'),
      'the new App to reach the catalog',
      10_000,
    );
    expect(recorder.mutations.length).toBeGreaterThan(before);
    expect(news.metadata.annotations?.['maxcloud.dev/order-id']).toBe(
      placed.id,
    );
    // Still everything else, as a full mutation.
    expect(recorder.mutations[recorder.mutations.length - 1].type).toBe('full');
    expect(recorder.find('Component', shop.slug, 'shop')).toBeDefined();
    expect(scheduled).toHaveLength(1);
  });

  it('stops following the event streams when the backend stops', async () => {
    await backend!.stop();
    backend = undefined;
    const before = recorder.mutations.length;
    await order(shop, 'App', 'after-shutdown', { image: 'nginx:1.27' });
    await new Promise(ok => setTimeout(ok, 2000)); // twice the debounce
    expect(recorder.mutations.length).toBe(before);
  });
});
