import { createParser } from 'eventsource-parser';
import { MaxcloudApiError } from './errors';
import type {
  AuthStatus,
  CatalogEntry,
  CreateOrderRequest,
  Invoice,
  LogLine,
  MaxcloudEvent,
  MaxcloudIdentity,
  Order,
  PriceEstimate,
  Quota,
  Resource,
  ResourceNode,
  Revisions,
  SecretInfo,
} from './types';

/** Options of {@link MaxcloudClient}. */
export interface MaxcloudClientOptions {
  /**
   * The API root: the order service's `…/api/v1`, or the `maxcloud` Backstage backend plugin's
   * `…/api/maxcloud`, which serves the same paths. A function is asked before every request (Backstage's
   * `discoveryApi.getBaseUrl('maxcloud')`).
   */
  baseUrl: string | (() => Promise<string>);
  /** The fetch to use: Backstage's `fetchApi.fetch` in the browser (it adds the user's token). */
  fetch?: typeof fetch;
  /** Headers sent with every request, e.g. `Authorization: Bearer mc_…` on the server side. */
  headers?: Record<string, string>;
}

/** Options of {@link MaxcloudClient.followEvents}. */
export interface FollowEventsOptions {
  /** Stops following. */
  signal: AbortSignal;
  /** Every event, in order, across reconnections. */
  onEvent(event: MaxcloudEvent): void;
  /** The stream delivers (`live`), or ended or failed (`error` then says why) and is about to be reopened. */
  onStatus?(status: { live: boolean; error?: unknown }): void;
  /** `Last-Event-ID` of the first connection; reconnections send the id of the last event seen. */
  lastEventId?: string;
  /** Bounds of the exponential backoff (with jitter) before reopening; default 1 s to 60 s. */
  backoff?: { minMs: number; maxMs: number };
}

/** Options of {@link MaxcloudClient.logs}. */
export interface LogsOptions {
  /** The last lines to send first, 1–10000 (the order service's default: 100). */
  tail?: number;
  /** Keep the stream open and yield each new line as it is printed, until `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
}

/** Options of {@link MaxcloudClient.createOrder}. */
export interface CreateOrderOptions {
  /** Replays with the same key return the original order instead of placing a second one. */
  idempotencyKey?: string;
}

/**
 * Client of the max-cloud order service API, for the browser (through the Backstage backend plugin) and for
 * Node (the scaffolder action, the entity provider and the backend plugin itself).
 */
export class MaxcloudClient {
  private readonly options: MaxcloudClientOptions;

  constructor(options: MaxcloudClientOptions) {
    this.options = options;
  }

  /** The same client, acting for `tenant` (the Backstage plugin's `X-Maxcloud-Tenant` header). */
  forTenant(tenant: string): MaxcloudClient {
    return new MaxcloudClient({
      ...this.options,
      headers: { ...this.options.headers, 'x-maxcloud-tenant': tenant },
    });
  }

  catalog(): Promise<CatalogEntry[]> {
    return this.json('GET', '/catalog');
  }

  catalogEntry(kind: string): Promise<CatalogEntry> {
    return this.json('GET', `/catalog/${encodeURIComponent(kind)}`);
  }

  /** What a resource of `kind` with these parameters would cost per month, before ordering it. */
  estimate(kind: string, parameters: Record<string, unknown>): Promise<PriceEstimate> {
    return this.json('POST', `/catalog/${encodeURIComponent(kind)}/estimate`, { parameters });
  }

  orders(query: { review?: 'pending'; limit?: number } = {}): Promise<Order[]> {
    const params = new URLSearchParams();
    if (query.review) params.set('review', query.review);
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    const qs = params.toString();
    return this.json('GET', `/orders${qs ? `?${qs}` : ''}`);
  }

  order(id: string): Promise<Order> {
    return this.json('GET', `/orders/${encodeURIComponent(id)}`);
  }

  createOrder(request: CreateOrderRequest, options: CreateOrderOptions = {}): Promise<Order> {
    const headers: Record<string, string> = {};
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    return this.json('POST', '/orders', request, headers);
  }

  approveOrder(id: string): Promise<Order> {
    return this.json('POST', `/orders/${encodeURIComponent(id)}/approve`, {});
  }

  rejectOrder(id: string, reason: string): Promise<Order> {
    return this.json('POST', `/orders/${encodeURIComponent(id)}/reject`, { reason });
  }

  resources(): Promise<Resource[]> {
    return this.json('GET', '/resources');
  }

  resourceTree(kind: string, name: string): Promise<ResourceNode> {
    return this.json(
      'GET',
      `/resources/${encodeURIComponent(kind)}/${encodeURIComponent(name)}/tree`,
    );
  }

  /** An App's revisions (oldest first) and its traffic split, as ordered and as served. `id`: the resource's id. */
  revisions(id: string): Promise<Revisions> {
    return this.json('GET', `/services/${encodeURIComponent(id)}/revisions`);
  }

  /**
   * An App's container logs (`GET /services/{id}/logs`, server-sent events), oldest first: the last `tail` lines,
   * then, with `follow`, each new line until `signal` aborts. Without `follow` the generator ends after the last
   * line (the server's `end` event). `id`: the resource's id.
   */
  async *logs(id: string, options: LogsOptions = {}): AsyncGenerator<LogLine> {
    const params = new URLSearchParams();
    if (options.tail !== undefined) params.set('tail', String(options.tail));
    if (options.follow) params.set('follow', 'true');
    const qs = params.toString();
    const path = `/services/${encodeURIComponent(id)}/logs${qs ? `?${qs}` : ''}`;
    for await (const event of this.serverSentEvents(path, {}, options.signal)) {
      if (event.event === 'end') return;
      if (event.event === 'log') yield JSON.parse(event.data) as LogLine;
    }
  }

  /** The organisation's limits (`null`: unlimited) and what its resources add up to. */
  quotas(): Promise<Quota> {
    return this.json('GET', '/quotas');
  }

  /**
   * One month's usage as an invoice (`YYYY-MM`, default the running month, then a preview with `final: false`).
   * Admins only: members get a `MaxcloudApiError` with status 403.
   */
  invoice(month?: string): Promise<Invoice> {
    return this.json('GET', `/usage/invoice${month ? `?month=${encodeURIComponent(month)}` : ''}`);
  }

  /** The organisation's secrets: names and key names; the API never returns values. */
  secrets(): Promise<SecretInfo[]> {
    return this.json('GET', '/secrets');
  }

  authStatus(): Promise<AuthStatus> {
    return this.json('GET', '/auth/status');
  }

  /** Only through the Backstage backend plugin: who the signed-in user is for max-cloud. */
  whoami(): Promise<MaxcloudIdentity> {
    return this.json('GET', '/whoami');
  }

  /**
   * The live events of the tenant (`GET /events`), until `signal` aborts or the server closes the stream.
   * Pass the id of the last event seen as `lastEventId` to get what was missed first.
   */
  async *events(
    options: { signal?: AbortSignal; lastEventId?: string } = {},
  ): AsyncGenerator<MaxcloudEvent> {
    const headers: Record<string, string> = {};
    if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
    for await (const event of this.serverSentEvents('/events', headers, options.signal)) {
      const parsed = toEvent(event.event, event.id, event.data);
      if (parsed) yield parsed;
    }
  }

  /** The server-sent events of `path`, as they arrive, until the stream ends or `signal` aborts. */
  private async *serverSentEvents(
    path: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): AsyncGenerator<{ event?: string; id?: string; data: string }> {
    const response = await this.request('GET', path, undefined, { accept: 'text/event-stream', ...headers }, signal);
    if (!response.body) {
      throw new MaxcloudApiError(502, 'no_stream', `the stream of ${path} has no body`);
    }
    const queue: Array<{ event?: string; id?: string; data: string }> = [];
    const parser = createParser({
      onEvent(event) {
        queue.push({ event: event.event, id: event.id, data: event.data });
      },
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        parser.feed(decoder.decode(value, { stream: true }));
        while (queue.length > 0) yield queue.shift()!;
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  /**
   * Follows the live events until `signal` aborts: the stream is reopened whenever it ends or fails, after a
   * jittered exponential backoff, from the last event seen, so no event is missed or seen twice.
   */
  async followEvents(options: FollowEventsOptions): Promise<void> {
    const { signal, onEvent, onStatus } = options;
    const { minMs, maxMs } = options.backoff ?? { minMs: 1000, maxMs: 60_000 };
    let lastEventId = options.lastEventId;
    let failures = 0;
    while (!signal.aborted) {
      let error: unknown;
      let live = false;
      try {
        for await (const event of this.events({ signal, lastEventId })) {
          if (!live) {
            live = true;
            failures = 0;
            onStatus?.({ live: true });
          }
          if (event.id) lastEventId = event.id;
          onEvent(event);
        }
      } catch (e) {
        error = e;
      }
      if (signal.aborted) return;
      onStatus?.({ live: false, error });
      const bound = Math.min(maxMs, minMs * 2 ** failures);
      failures += 1;
      // Jitter, so that clients (tenants, backend replicas, browser tabs) do not reconnect in lockstep.
      await abortableSleep(bound / 2 + (Math.random() * bound) / 2, signal);
    }
  }

  private async json<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const response = await this.request(method, path, body, headers);
    return (await response.json()) as T;
  }

  private async request(
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Response> {
    const base =
      typeof this.options.baseUrl === 'string'
        ? this.options.baseUrl
        : await this.options.baseUrl();
    const doFetch = this.options.fetch ?? fetch;
    const response = await doFetch(`${base.replace(/\/+$/, '')}${path}`, {
      method,
      headers: {
        ...this.options.headers,
        ...headers,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal,
    });
    if (!response.ok) throw await MaxcloudApiError.fromResponse(response);
    return response;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    let timer: ReturnType<typeof setTimeout> | undefined = undefined;
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

function toEvent(type: string | undefined, id: string | undefined, data: string): MaxcloudEvent | undefined {
  switch (type) {
    case 'order':
      return { type: 'order', id, data: JSON.parse(data) };
    case 'service':
      return { type: 'service', id, data: JSON.parse(data) };
    case 'lagged':
      return { type: 'lagged', id };
    default:
      // comments, keep-alives and event types this client does not know
      return undefined;
  }
}
