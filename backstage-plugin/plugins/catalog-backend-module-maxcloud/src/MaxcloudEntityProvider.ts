import {
  LoggerService,
  readSchedulerServiceTaskScheduleDefinitionFromConfig,
  RootConfigService,
  SchedulerService,
  SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { Entity, stringifyEntityRef } from '@backstage/catalog-model';
import {
  DeferredEntity,
  EntityProvider,
  EntityProviderConnection,
} from '@backstage/plugin-catalog-node';
import {
  CatalogEntry,
  MaxcloudEvent,
  Resource,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import { MaxcloudService } from '@maxcloud/backstage-plugin-maxcloud-node';
import {
  apiEntityOf,
  EntityContext,
  resourceEntityOf,
  templateEntityOf,
} from './entities';

/** Default schedule of the full refresh: every 5 minutes, at most 1 minute each. */
export const DEFAULT_MAXCLOUD_CATALOG_SCHEDULE: SchedulerServiceTaskScheduleDefinition =
  {
    frequency: { minutes: 5 },
    timeout: { minutes: 1 },
  };

/** Default owner of the API and Template entities of the service types. */
export const DEFAULT_MAXCLOUD_PLATFORM_OWNER =
  'group:default/maxcloud-platform';

/** Options of {@link MaxcloudEntityProvider}. */
export interface MaxcloudEntityProviderOptions {
  /** The order service and the configured tenants (`maxcloudServiceRef`). */
  maxcloud: MaxcloudService;
  logger: LoggerService;
  scheduler: SchedulerService;
  /** When the full refresh runs; default {@link DEFAULT_MAXCLOUD_CATALOG_SCHEDULE}. */
  schedule?: SchedulerServiceTaskScheduleDefinition;
  /** Owner of the API and Template entities; default {@link DEFAULT_MAXCLOUD_PLATFORM_OWNER}. */
  platformOwner?: string;
  /** Backstage's `app.baseUrl`: resources link to the portal page of their last order. */
  appBaseUrl?: string;
  /** Wait after an event before refreshing, so that a burst of events makes one refresh; default 1000 ms. */
  debounceMs?: number;
  /** Bounds of the backoff before an event stream is reopened; default 1 s to 60 s. */
  reconnect?: { minMs: number; maxMs: number };
  /** How long reading one tenant may take before it counts as failed; default 30 s. */
  requestTimeoutMs?: number;
}

const TYPES_LOCATION_KEY = 'maxcloud:catalog';
const tenantLocationKey = (slug: string) => `maxcloud:tenant:${slug}`;

/**
 * Entity provider of max-cloud: for every service type of the order service's catalog an API entity (its
 * parameters' JSON Schema) and a Software Template that orders it; for every resource of the configured
 * tenants a Component (Apps) or Resource (everything else) in the tenant's namespace.
 *
 * It refreshes on a schedule and whenever a tenant's event stream reports a change. A tenant that cannot be
 * read (unreachable, revoked key) keeps the entities last read for it; the other tenants are not affected.
 *
 * @public
 */
export class MaxcloudEntityProvider implements EntityProvider {
  /** Builds the provider from `maxcloud.catalog` (schedule, owner) and `app.baseUrl`. */
  static fromConfig(
    config: RootConfigService,
    options: Omit<
      MaxcloudEntityProviderOptions,
      'schedule' | 'platformOwner' | 'appBaseUrl'
    >,
  ): MaxcloudEntityProvider {
    const scheduleConfig = config.getOptionalConfig(
      'maxcloud.catalog.schedule',
    );
    return new MaxcloudEntityProvider({
      ...options,
      schedule: scheduleConfig
        ? readSchedulerServiceTaskScheduleDefinitionFromConfig(scheduleConfig)
        : DEFAULT_MAXCLOUD_CATALOG_SCHEDULE,
      platformOwner: config.getOptionalString('maxcloud.catalog.owner'),
      appBaseUrl: config.getOptionalString('app.baseUrl'),
    });
  }

  private readonly maxcloud: MaxcloudService;
  private readonly logger: LoggerService;
  private readonly scheduler: SchedulerService;
  private readonly schedule: SchedulerServiceTaskScheduleDefinition;
  private readonly context: EntityContext;
  private readonly debounceMs: number;
  private readonly reconnect: { minMs: number; maxMs: number };
  private readonly requestTimeoutMs: number;
  private readonly abort = new AbortController();

  private connection?: EntityProviderConnection;
  /** The service types as last read; undefined until one tenant has answered. */
  private types?: CatalogEntry[];
  /** Each tenant's resources as last read; a tenant is missing until it has answered once. */
  private readonly resources = new Map<string, Resource[]>();
  /** Entity ref → location key of what the last mutation emitted. */
  private emitted = new Map<string, string>();
  private running?: Promise<void>;
  private queued?: Promise<void>;
  private debounce?: ReturnType<typeof setTimeout>;
  private readonly streams: Promise<void>[] = [];

  constructor(options: MaxcloudEntityProviderOptions) {
    this.maxcloud = options.maxcloud;
    this.logger = options.logger;
    this.scheduler = options.scheduler;
    this.schedule = options.schedule ?? DEFAULT_MAXCLOUD_CATALOG_SCHEDULE;
    this.debounceMs = options.debounceMs ?? 1000;
    this.reconnect = options.reconnect ?? { minMs: 1000, maxMs: 60_000 };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.context = {
      baseUrl: options.maxcloud.config.baseUrl,
      platformOwner: options.platformOwner ?? DEFAULT_MAXCLOUD_PLATFORM_OWNER,
      tenantSlugs: options.maxcloud.config.tenants.map(t => t.slug),
      appBaseUrl: options.appBaseUrl?.replace(/\/+$/, ''),
    };
  }

  getProviderName(): string {
    return 'maxcloud';
  }

  /** The id of the scheduled refresh task. */
  get taskId(): string {
    return `${this.getProviderName()}:refresh`;
  }

  async connect(connection: EntityProviderConnection): Promise<void> {
    this.connection = connection;
    await this.scheduler.scheduleTask({
      id: this.taskId,
      ...this.schedule,
      fn: async () => {
        await this.refresh();
      },
    });
    for (const tenant of this.maxcloud.config.tenants) {
      this.streams.push(this.follow(tenant.slug));
    }
  }

  /**
   * Reads the service types and every tenant's resources and hands the entities to the catalog. Calls while a
   * refresh runs are served by one more refresh after it, so no change is missed and reads do not pile up.
   */
  refresh(): Promise<void> {
    if (!this.running) {
      this.running = this.read().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    if (!this.queued) {
      this.queued = this.running
        .catch(() => undefined)
        .then(() => {
          this.queued = undefined;
          return this.refresh();
        });
    }
    return this.queued;
  }

  /** Stops the event streams and pending refreshes (on backend shutdown). */
  async stop(): Promise<void> {
    this.abort.abort();
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = undefined;
    await Promise.allSettled(this.streams);
    await Promise.allSettled([this.running, this.queued]);
  }

  private async read(): Promise<void> {
    const connection = this.connection;
    if (!connection)
      throw new Error(
        'the max-cloud entity provider is not connected to the catalog yet',
      );
    if (this.abort.signal.aborted) return;
    const tenants = this.maxcloud.config.tenants;

    let types: CatalogEntry[] | undefined;
    for (const tenant of tenants) {
      try {
        types = await this.timed(
          this.maxcloud.client(tenant.slug).catalog(),
          `the catalog of ${tenant.slug}`,
        );
        break;
      } catch (e) {
        this.logger.debug(
          `Cannot read the max-cloud catalog as tenant ${tenant.slug}: ${e}`,
        );
      }
    }
    if (types) {
      this.types = types;
    } else if (tenants.length > 0) {
      this.logger.error(
        `Cannot read the max-cloud catalog as any tenant; ${
          this.types
            ? `keeping the ${this.types.length} service types read before`
            : 'no service types yet'
        }`,
      );
    }

    await Promise.all(
      tenants.map(async tenant => {
        try {
          const resources = await this.timed(
            this.maxcloud.client(tenant.slug).resources(),
            `the resources of ${tenant.slug}`,
          );
          this.resources.set(tenant.slug, resources);
        } catch (e) {
          const known = this.resources.get(tenant.slug);
          this.logger.error(
            `Cannot read the resources of max-cloud tenant ${
              tenant.slug
            }: ${e}; ${
              known
                ? `keeping its ${known.length} resources read before`
                : 'none read yet'
            }`,
          );
        }
      }),
    );
    if (this.abort.signal.aborted) return;

    const entities = this.entities();
    const current = new Map(
      entities.map(d => [stringifyEntityRef(d.entity), d.locationKey!]),
    );
    const complete =
      this.types !== undefined &&
      tenants.every(t => this.resources.has(t.slug));
    if (complete) {
      await connection.applyMutation({ type: 'full', entities });
    } else {
      // Some tenant has never answered: a full mutation would delete the entities the catalog still has of
      // it from before. Replace what is known, remove only what this provider emitted and is gone now.
      const removed = [...this.emitted]
        .filter(([ref]) => !current.has(ref))
        .map(([entityRef, locationKey]) => ({ entityRef, locationKey }));
      await connection.applyMutation({
        type: 'delta',
        added: entities,
        removed,
      });
    }
    this.emitted = current;
    const resourceCount = [...this.resources.values()].reduce(
      (n, list) => n + list.length,
      0,
    );
    this.logger.info(
      `max-cloud: ${
        this.types?.length ?? 0
      } service types and ${resourceCount} resources of ` +
        `${this.resources.size}/${tenants.length} tenants in the catalog` +
        `${complete ? '' : ' (not all tenants could be read yet)'}`,
    );
  }

  private entities(): DeferredEntity[] {
    const out: DeferredEntity[] = [];
    const add = (entity: Entity, locationKey: string) =>
      out.push({ entity, locationKey });
    for (const entry of this.types ?? []) {
      add(apiEntityOf(entry, this.context), TYPES_LOCATION_KEY);
      add(templateEntityOf(entry, this.context), TYPES_LOCATION_KEY);
    }
    for (const tenant of this.maxcloud.config.tenants) {
      for (const resource of this.resources.get(tenant.slug) ?? []) {
        add(
          resourceEntityOf(resource, tenant, this.context),
          tenantLocationKey(tenant.slug),
        );
      }
    }
    return out;
  }

  /** Follows a tenant's event stream until shutdown, reopening it with backoff when it ends or fails. */
  private follow(slug: string): Promise<void> {
    return this.maxcloud.client(slug).followEvents({
      signal: this.abort.signal,
      backoff: this.reconnect,
      onEvent: event => this.changed(slug, event),
      onStatus: ({ live, error }) => {
        if (live) return;
        if (error) {
          this.logger.warn(
            `The event stream of max-cloud tenant ${slug} failed: ${error}`,
          );
        } else {
          this.logger.info(
            `The event stream of max-cloud tenant ${slug} ended; reopening it`,
          );
        }
      },
    });
  }

  /** A tenant reported a change: refresh soon, once for a burst of events. */
  private changed(slug: string, event: MaxcloudEvent): void {
    if (event.type === 'lagged') {
      this.logger.info(
        `max-cloud tenant ${slug}: events were missed; refreshing`,
      );
    }
    if (this.debounce || this.abort.signal.aborted) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.refresh().catch(e =>
        this.logger.error(`Refreshing the max-cloud entities failed: ${e}`),
      );
    }, this.debounceMs);
  }

  private timed<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `reading ${what} took longer than ${this.requestTimeoutMs} ms`,
            ),
          ),
        this.requestTimeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}
