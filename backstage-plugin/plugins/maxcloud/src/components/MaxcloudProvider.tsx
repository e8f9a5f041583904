import {
  createContext,
  ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react';
import { useApi } from '@backstage/frontend-plugin-api';
import { Progress, ResponseErrorPanel } from '@backstage/core-components';
import { useLocation, useNavigate } from 'react-router-dom';
import useAsync from 'react-use/esm/useAsync';
import {
  MaxcloudApiError,
  MaxcloudClient,
  MaxcloudEvent,
  MaxcloudIdentity,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import { maxcloudApiRef } from '../api';

/**
 * `Last-Event-ID` of a first connection. The server cannot place it, so it answers with a `lagged` event at
 * once: every view re-reads what it shows as soon as the stream is open, so nothing that happened between
 * the first read and the connection goes unseen. Reconnections send the id of the last event seen instead
 * and get what they missed.
 */
const FIRST_CONNECTION = 'connect';

type Listener = (event: MaxcloudEvent) => void;

/** One live event stream of a tenant, shared by every view under it. */
export class EventHub {
  private readonly listeners = new Set<Listener>();
  private readonly liveListeners = new Set<(live: boolean) => void>();
  private abort?: AbortController;
  private live = false;

  constructor(private readonly client: MaxcloudClient) {}

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onLive(listener: (live: boolean) => void): () => void {
    this.liveListeners.add(listener);
    listener(this.live);
    return () => this.liveListeners.delete(listener);
  }

  isLive(): boolean {
    return this.live;
  }

  start(): void {
    if (this.abort) return;
    const abort = new AbortController();
    this.abort = abort;
    this.run(abort.signal).catch(() => {});
  }

  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
    this.setLive(false);
  }

  private setLive(live: boolean) {
    if (this.live === live) return;
    this.live = live;
    this.liveListeners.forEach(l => l(live));
  }

  private async run(signal: AbortSignal) {
    await this.client.followEvents({
      signal,
      lastEventId: FIRST_CONNECTION,
      backoff: { minMs: 1000, maxMs: 30_000 },
      onStatus: ({ live }) => this.setLive(live),
      onEvent: event =>
        this.listeners.forEach(l => {
          try {
            l(event);
          } catch {
            // a view's handler must not end the stream of the others
          }
        }),
    });
  }
}

/** What the max-cloud views share: the client acting for the chosen tenant and its live events. */
export interface MaxcloudContextValue {
  /** The client acting for {@link MaxcloudContextValue.tenant} (or the user's default tenant). */
  client: MaxcloudClient;
  /** The chosen tenant; undefined when the API does not tell the user's tenants (the order service itself). */
  tenant?: string;
  /** Who the user is for max-cloud, if the backend plugin tells (`/whoami`). */
  identity?: MaxcloudIdentity;
  setTenant(slug: string): void;
  events: EventHub;
}

const MaxcloudContext = createContext<MaxcloudContextValue | undefined>(undefined);

const TENANT_STORAGE_KEY = 'maxcloud.tenant';

function storedTenant(): string | undefined {
  try {
    return window.localStorage.getItem(TENANT_STORAGE_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Provides the tenant-scoped client and one shared event stream to the views below it. `tenant` forces a
 * tenant (the entity card uses the entity's annotation); otherwise the stored choice or the user's first
 * tenant is used.
 */
export function MaxcloudProvider(props: { tenant?: string; children: ReactNode }) {
  const api = useApi(maxcloudApiRef);
  const whoami = useAsync(async () => {
    try {
      return await api.whoami();
    } catch (e) {
      // The order service itself has no /whoami; a backend plugin without it acts for the default tenant.
      if (e instanceof MaxcloudApiError && (e.status === 404 || e.status === 405)) return undefined;
      throw e;
    }
  }, [api]);
  const [chosen, setChosen] = useState<string | undefined>(() => storedTenant());
  const location = useLocation();
  const navigate = useNavigate();
  const linked = new URLSearchParams(location.search).get('tenant') ?? undefined;

  const identity = whoami.value;
  const tenants = identity?.tenants.map(t => t.slug) ?? [];
  let tenant: string | undefined;
  if (props.tenant) tenant = props.tenant;
  else if (linked && tenants.includes(linked)) tenant = linked;
  else if (chosen && tenants.includes(chosen)) tenant = chosen;
  else tenant = tenants[0];

  const client = useMemo(() => (tenant ? api.forTenant(tenant) : api), [api, tenant]);
  const events = useMemo(() => new EventHub(client), [client]);
  useEffect(() => {
    if (whoami.loading) return undefined;
    events.start();
    return () => events.stop();
  }, [events, whoami.loading]);

  const setTenant = useCallback(
    (slug: string) => {
      try {
        window.localStorage.setItem(TENANT_STORAGE_KEY, slug);
      } catch {
        // private mode: the choice lasts for this page only
      }
      setChosen(slug);
      if (linked) {
        // a link chose the tenant (`?tenant=`); the user's choice replaces it
        const search = new URLSearchParams(location.search);
        search.delete('tenant');
        navigate({ pathname: location.pathname, search: search.toString() }, { replace: true });
      }
    },
    [linked, location.pathname, location.search, navigate],
  );

  const value = useMemo<MaxcloudContextValue>(
    () => ({ client, tenant, identity, setTenant, events }),
    [client, tenant, identity, setTenant, events],
  );

  if (whoami.loading) return <Progress />;
  if (whoami.error) {
    return (
      <div data-testid="maxcloud-whoami-error">
        <ResponseErrorPanel title="max-cloud is not available" error={whoami.error} />
      </div>
    );
  }
  return <MaxcloudContext.Provider value={value}>{props.children}</MaxcloudContext.Provider>;
}

export function useMaxcloud(): MaxcloudContextValue {
  const value = useContext(MaxcloudContext);
  if (!value) throw new Error('useMaxcloud must be used inside <MaxcloudProvider>');
  return value;
}

/** Calls `handler` for every live event of the tenant. */
export function useMaxcloudEvents(handler: (event: MaxcloudEvent) => void) {
  const { events } = useMaxcloud();
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => events.subscribe(e => ref.current(e)), [events]);
}

/** Whether the live event stream is open. */
export function useLive(): boolean {
  const { events } = useMaxcloud();
  const [live, setLive] = useState(events.isLive());
  useEffect(() => events.onLive(setLive), [events]);
  return live;
}

export interface LiveData<T> {
  value?: T;
  error?: Error;
  loading: boolean;
  reload(): void;
}

/**
 * Loads data with the tenant's client and loads it again whenever an event says it may have changed
 * (`relevant`), or the stream lagged. The previous value stays while a reload runs; a reload asked for while
 * another runs supersedes it, so the last answer shown is never older than the last event.
 */
export function useLiveData<T>(
  load: (client: MaxcloudClient) => Promise<T>,
  deps: unknown[],
  relevant: (event: MaxcloudEvent) => boolean,
): LiveData<T> {
  const { client } = useMaxcloud();
  const [state, setState] = useState<{ value?: T; error?: Error; loading: boolean }>({
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    setState({ loading: true });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, ...deps]);

  useEffect(() => {
    let current = true;
    setState(s => ({ ...s, loading: true }));
    loadRef.current(client).then(
      value => current && setState({ value, loading: false }),
      error => current && setState(s => ({ value: s.value, error, loading: false })),
    );
    return () => {
      current = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, tick, ...deps]);

  const reload = useCallback(() => setTick(t => t + 1), []);
  const relevantRef = useRef(relevant);
  relevantRef.current = relevant;
  useMaxcloudEvents(event => {
    if (event.type === 'lagged' || relevantRef.current(event)) reload();
  });
  return { ...state, reload };
}
