import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  BackstageCredentials,
  BackstageUserInfo,
  LoggerService,
  RootConfigService,
  UserInfoService,
} from '@backstage/backend-plugin-api';
import { InputError, NotAllowedError } from '@backstage/errors';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  CreateOrderRequest,
  MaxcloudClient,
  Order,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import {
  MaxcloudService,
  resourceEntityRef,
  TenantConfig,
  tenantsOf,
} from '@maxcloud/backstage-plugin-maxcloud-node';
import { toBackstageError } from './errors';
import { examples } from './orderCreate.examples';

/** The id of the action in templates. */
export const MAXCLOUD_ORDER_CREATE_ACTION_ID = 'maxcloud:order:create';

/** How long the action waits: `none`, until the order has a pull request (`pr`), is `merged`, or is `ready`. */
export type MaxcloudOrderWait = 'none' | 'pr' | 'merged' | 'ready';

const WAITS = ['none', 'pr', 'merged', 'ready'] as const;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DEFAULT_TIMEOUT_SECONDS = 300;
const MAX_TIMEOUT_SECONDS = 3600;
/** The states an order passes on its way to `ready`, in order. */
const PROGRESS = ['accepted', 'pr_open', 'merged', 'applied', 'ready'];
const REACHED: Record<MaxcloudOrderWait, number> = {
  none: 0,
  pr: PROGRESS.indexOf('pr_open'),
  merged: PROGRESS.indexOf('merged'),
  ready: PROGRESS.indexOf('ready'),
};
/** States an order never leaves and that are not success. */
const FAILED = new Set(['failed', 'rejected', 'superseded']);

/** Options of {@link createMaxcloudOrderAction}. */
export interface MaxcloudOrderActionOptions {
  /** The order service and the configured tenants (`maxcloudServiceRef`). */
  maxcloud: MaxcloudService;
  /** Maps the user who runs the template to their ownership refs (`coreServices.userInfo`). */
  userInfo: UserInfoService;
  /** The root config; `app.baseUrl` is where the portal's order pages are. */
  config: RootConfigService;
  /** First interval between two reads of the order while waiting; it grows to 5 s. Default 250 ms. */
  pollIntervalMs?: number;
}

/**
 * Creates the `maxcloud:order:create` action: orders a max-cloud service (an App, a Database, …) for a tenant
 * of the user who runs the template, and waits until the order has a pull request (or longer, see `wait`).
 *
 * @public
 */
export function createMaxcloudOrderAction(options: MaxcloudOrderActionOptions) {
  const { maxcloud, userInfo, config } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const appBaseUrl = config.getString('app.baseUrl').replace(/\/+$/, '');
  const orderUrlOf = (id: string) =>
    `${appBaseUrl}/maxcloud/orders/${encodeURIComponent(id)}`;

  return createTemplateAction({
    id: MAXCLOUD_ORDER_CREATE_ACTION_ID,
    description:
      'Orders a max-cloud service (App, Database, Registry, DNSRecord, Workspace, …) for a tenant of the user ' +
      'running the template. The order becomes a pull request in the tenant repository; by default the step ' +
      'waits until that pull request is open.',
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        kind: z =>
          z
            .string()
            .min(1)
            .describe(
              'Service type of the max-cloud catalog, e.g. App or Database (case-insensitive).',
            ),
        name: z =>
          z
            .string()
            .regex(DNS_LABEL)
            .describe(
              'Name of the resource: a DNS-1123 label (lowercase letters, digits and "-", at most 63 characters), ' +
                'unique per kind within the tenant.',
            ),
        parameters: z =>
          z
            .record(z.any())
            .optional()
            .describe(
              "The service's parameters, as its JSON Schema in the max-cloud catalog describes them; defaults " +
                'fill what is left out. Default: {}.',
            ),
        tenant: z =>
          z
            .string()
            .optional()
            .describe(
              'Slug of the max-cloud tenant (organisation) to order for. Optional when the user belongs to ' +
                'exactly one configured tenant.',
            ),
        wait: z =>
          z
            .enum(WAITS)
            .optional()
            .describe(
              'What to wait for: none; pr (default) until the order has a pull request; merged until it is ' +
                'merged (orders that need review wait for approval); ready until the service runs.',
            ),
        timeoutSeconds: z =>
          z
            .number()
            .int()
            .min(1)
            .max(MAX_TIMEOUT_SECONDS)
            .optional()
            .describe(
              `How long to wait at most, in seconds (default ${DEFAULT_TIMEOUT_SECONDS}, at most ` +
                `${MAX_TIMEOUT_SECONDS}); the step fails when the order has not got that far by then.`,
            ),
      },
      output: {
        orderId: z => z.string().describe('Id of the order.'),
        state: z =>
          z
            .string()
            .describe(
              'State of the order when the step ended: accepted, pr_open, merged, applied or ready.',
            ),
        pullRequestUrl: z =>
          z
            .string()
            .describe(
              "The order's pull request on the Git hosting provider; the portal's order page when the " +
                'provider has no web pages (the embedded one).',
            ),
        orderUrl: z => z.string().describe("The portal's page of the order."),
        entityRef: z =>
          z
            .string()
            .describe(
              'The catalog entity of the resource, e.g. component:acme-shop/shop; the max-cloud catalog ' +
                'module adds it once the order is placed.',
            ),
        resourceUrl: z =>
          z
            .string()
            .optional()
            .describe(
              'URL of the service once the platform reports one (Apps).',
            ),
      },
    },

    async handler(ctx) {
      const { kind, name } = ctx.input;
      const parameters = ctx.input.parameters ?? {};
      const wait: MaxcloudOrderWait = ctx.input.wait ?? 'pr';
      const timeoutSeconds =
        ctx.input.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
      if (!kind)
        throw new InputError(
          'kind: the service type to order is required, e.g. App',
        );
      if (!DNS_LABEL.test(name ?? '')) {
        throw new InputError(
          `name: ${JSON.stringify(
            name,
          )} is not a DNS-1123 label (lowercase letters, digits and "-", ` +
            'starting and ending with a letter or digit, at most 63 characters)',
        );
      }
      if (typeof parameters !== 'object' || Array.isArray(parameters)) {
        throw new InputError('parameters: must be an object');
      }
      if (!WAITS.includes(wait)) {
        throw new InputError(
          `wait: must be one of ${WAITS.join(', ')}, got ${JSON.stringify(
            wait,
          )}`,
        );
      }
      if (
        !Number.isInteger(timeoutSeconds) ||
        timeoutSeconds < 1 ||
        timeoutSeconds > MAX_TIMEOUT_SECONDS
      ) {
        throw new InputError(
          `timeoutSeconds: must be a whole number from 1 to ${MAX_TIMEOUT_SECONDS}`,
        );
      }

      const { tenant, user } = await tenantOfInitiator(
        await ctx.getInitiatorCredentials(),
        ctx.input.tenant,
      );
      // The order service records the Backstage user as who asked, beside the tenant key's user.
      const client = maxcloud.client(tenant.slug, user);

      if (ctx.isDryRun) {
        const entry = await client.catalogEntry(kind).catch(e => {
          const error = toBackstageError(e, tenant.slug);
          throw error.name === 'NotFoundError'
            ? new InputError(`kind: ${error.message} in the max-cloud catalog`)
            : error;
        });
        ctx.logger.info(
          `Dry run: would order ${entry.kind} ${name} for tenant ${tenant.slug} with ` +
            `${JSON.stringify(parameters)}; nothing was ordered`,
        );
        const orderUrl = `${appBaseUrl}/maxcloud/orders`;
        ctx.output('orderId', 'dry-run');
        ctx.output('state', 'dry-run');
        ctx.output('pullRequestUrl', orderUrl);
        ctx.output('orderUrl', orderUrl);
        ctx.output(
          'entityRef',
          resourceEntityRef(tenant.slug, entry.kind, name),
        );
        return;
      }

      const idempotencyKey = idempotencyKeyOf(
        ctx.task.id,
        ctx.step?.id,
        kind,
        name,
      );
      let order: Order;
      try {
        order = await client.createOrder(
          {
            kind,
            name,
            parameters: parameters as CreateOrderRequest['parameters'],
          },
          { idempotencyKey },
        );
      } catch (e) {
        throw toBackstageError(e, tenant.slug);
      }
      const orderUrl = orderUrlOf(order.id);
      ctx.logger.info(
        `Order ${order.id}: ${order.action} ${order.kind} ${order.name} for tenant ${tenant.slug} is ` +
          `${order.state} (${orderUrl})`,
      );
      ctx.output('orderId', order.id);
      ctx.output('orderUrl', orderUrl);
      ctx.output(
        'entityRef',
        resourceEntityRef(tenant.slug, order.kind, order.name),
      );

      order = await waitFor(client, order, {
        wait,
        timeoutMs: timeoutSeconds * 1000,
        pollIntervalMs,
        logger: ctx.logger,
        signal: ctx.signal,
        tenant: tenant.slug,
        orderUrl,
      });

      ctx.output('state', order.state);
      ctx.output('pullRequestUrl', order.pull_request?.url ?? orderUrl);
      const resourceUrl = await resourceUrlOf(client, order).catch(e => {
        ctx.logger.warn(
          `Cannot read the URL of ${order.kind} ${order.name}: ${e}`,
        );
        return undefined;
      });
      if (resourceUrl) ctx.output('resourceUrl', resourceUrl);
    },
  });

  /** The tenant the user who runs the template orders for; refused unless the user belongs to it. */
  async function tenantOfInitiator(
    credentials: BackstageCredentials,
    requested: string | undefined,
  ): Promise<{ tenant: TenantConfig; user: string }> {
    let user: BackstageUserInfo;
    try {
      user = await userInfo.getUserInfo(credentials);
    } catch (e) {
      throw new NotAllowedError(
        'max-cloud orders are placed for a signed-in Backstage user',
        e,
      );
    }
    const mine = tenantsOf(maxcloud.config, user.ownershipEntityRefs);
    if (requested) {
      if (!maxcloud.config.tenants.some(t => t.slug === requested)) {
        throw new InputError(
          `tenant: ${requested} is not a max-cloud tenant configured in this Backstage`,
        );
      }
      const found = mine.find(m => m.tenant.slug === requested);
      if (!found) {
        throw new NotAllowedError(
          `${user.userEntityRef} may not order for max-cloud tenant ${requested}: neither the user nor ` +
            'their groups are among its members or admins',
        );
      }
      return { tenant: found.tenant, user: user.userEntityRef };
    }
    if (mine.length === 1) {
      return { tenant: mine[0].tenant, user: user.userEntityRef };
    }
    if (mine.length === 0) {
      throw new NotAllowedError(
        `${user.userEntityRef} belongs to no max-cloud tenant and cannot order services`,
      );
    }
    const slugs = mine.map(m => m.tenant.slug).join(', ');
    throw new InputError(
      `tenant: ${user.userEntityRef} may order for several max-cloud tenants (${slugs}); choose one`,
    );
  }
}

/**
 * The idempotency key of a step's order: the same task, step, kind and name give the same key, so a retried
 * step (or a recovered task) gets the order it placed before instead of a second one. Steps with `each` order
 * different names and so get different keys.
 */
export function idempotencyKeyOf(
  taskId: string,
  stepId: string | undefined,
  kind: string,
  name: string,
): string {
  const readable = `backstage:${taskId}:${
    stepId ?? '-'
  }:${kind.toLowerCase()}/${name}`;
  if (readable.length <= 255 && /^[\x21-\x7e]+$/.test(readable))
    return readable;
  const digest = createHash('sha256')
    .update(JSON.stringify([taskId, stepId, kind, name]))
    .digest('hex');
  return `backstage:${digest}`;
}

interface WaitOptions {
  wait: MaxcloudOrderWait;
  timeoutMs: number;
  pollIntervalMs: number;
  logger: LoggerService;
  signal?: AbortSignal;
  tenant: string;
  orderUrl: string;
}

/** Reads the order until it has got as far as `wait` asks; fails when it fails or the time is up. */
async function waitFor(
  client: MaxcloudClient,
  first: Order,
  options: WaitOptions,
): Promise<Order> {
  const { wait, logger, orderUrl } = options;
  const deadline = Date.now() + options.timeoutMs;
  let order = first;
  let interval = options.pollIntervalMs;
  let toldReview = false;
  for (;;) {
    if (wait === 'none' || PROGRESS.indexOf(order.state) >= REACHED[wait])
      return order;
    if (FAILED.has(order.state)) {
      const why =
        order.error ?? order.history[order.history.length - 1]?.message;
      throw new Error(
        `Order ${order.id} was ${order.state}${
          why ? `: ${why}` : ''
        } (${orderUrl})`,
      );
    }
    const pr = order.pull_request;
    if (
      !toldReview &&
      pr?.state === 'open' &&
      pr.merge_policy === 'review' &&
      pr.review_state !== 'approved'
    ) {
      logger.info(
        `Pull request #${pr.number} needs review before it is merged; approve it ` +
          `${pr.url ? `at ${pr.url}` : `in the portal: ${orderUrl}`}`,
      );
      toldReview = true;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new Error(
        `Order ${order.id} is still ${order.state} after ${Math.round(
          options.timeoutMs / 1000,
        )} s ` +
          `(the step waits until it is ${
            wait === 'pr' ? 'pr_open' : wait
          }); follow it at ${orderUrl}`,
      );
    }
    await sleep(Math.min(interval, left), options.signal);
    interval = Math.min(interval * 1.5, 5000);
    const previous = order.state;
    try {
      order = await client.order(order.id);
    } catch (e) {
      throw toBackstageError(e, options.tenant);
    }
    if (order.state !== previous) {
      const number = order.pull_request
        ? ` (pull request #${order.pull_request.number})`
        : '';
      logger.info(`Order ${order.id} is ${order.state}${number}`);
    }
  }
}

/** The URL of the ordered resource, once the platform reports one. */
async function resourceUrlOf(
  client: MaxcloudClient,
  order: Order,
): Promise<string | undefined> {
  if (order.action === 'delete') return undefined;
  const resources = await client.resources();
  const resource = resources.find(
    r => r.kind === order.kind && r.name === order.name,
  );
  return resource?.url ?? undefined;
}

async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (e) {
    if (signal?.aborted) throw new Error('the step was cancelled');
    throw e;
  }
}
