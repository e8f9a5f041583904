import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import {
  scaffolderActionsExtensionPoint,
  TemplateAction,
} from '@backstage/plugin-scaffolder-node';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import {
  RunningMaxcloud,
  startMaxcloud,
} from '../../../testing/maxcloudServer';
import scaffolderModuleMaxcloud from './index';

jest.setTimeout(60_000);

describe('scaffolder-backend-module-maxcloud', () => {
  let server: RunningMaxcloud;
  afterAll(() => server?.stop());

  it('registers maxcloud:order:create with the scaffolder, wired to the configured tenants', async () => {
    server = await startMaxcloud();
    const shop = await server.register('ops@shop.example', 'Shop Co');
    const scaffolderActions = { addActions: jest.fn() };
    const backend = await startTestBackend({
      extensionPoints: [[scaffolderActionsExtensionPoint, scaffolderActions]],
      features: [
        scaffolderModuleMaxcloud,
        mockServices.rootConfig.factory({
          data: {
            app: { baseUrl: 'http://backstage.test' },
            maxcloud: {
              baseUrl: server.url,
              // the test backend's users are user:default/mock
              tenants: [
                {
                  slug: shop.slug,
                  apiKey: shop.apiKey,
                  members: ['user:default/mock'],
                },
              ],
            },
          },
        }),
      ],
    });
    try {
      expect(scaffolderActions.addActions).toHaveBeenCalledTimes(1);
      const actions: TemplateAction<any, any>[] =
        scaffolderActions.addActions.mock.calls[0];
      expect(actions.map(a => a.id)).toEqual(['maxcloud:order:create']);
      const [action] = actions;
      expect(action.supportsDryRun).toBe(true);
      expect(action.examples?.length).toBeGreaterThan(0);
      // The zod schema reaches the scaffolder as JSON Schema (its input is validated against it).
      expect(action.schema?.input).toMatchObject({
        type: 'object',
        required: expect.arrayContaining(['kind', 'name']),
        properties: {
          kind: { type: 'string' },
          name: { type: 'string', pattern: expect.any(String) },
          wait: { enum: ['none', 'pr', 'merged', 'ready'] },
        },
      });
      expect(action.schema?.output).toMatchObject({
        required: expect.arrayContaining([
          'orderId',
          'state',
          'pullRequestUrl',
          'orderUrl',
        ]),
      });

      // The action the backend built orders through maxcloudServiceRef with the tenant's key.
      const ctx = createMockActionContext({
        input: {
          kind: 'App',
          name: 'wired',
          parameters: { image: 'nginx:1.27' },
        },
      });
      await action.handler(ctx);
      const orderId = (ctx.output as jest.Mock).mock.calls.find(
        ([name]) => name === 'orderId',
      )[1];
      const { body } = await server.call(
        shop.apiKey,
        'GET',
        `/orders/${orderId}`,
      );
      expect(body).toMatchObject({
        tenant: shop.slug,
        kind: 'App',
        name: 'wired',
      });
    } finally {
      await backend.stop();
    }
  });
});
