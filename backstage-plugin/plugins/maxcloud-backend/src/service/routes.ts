/**
 * What the browser may do through the plugin: the order service's own paths, each with the role it needs.
 * Everything else (API keys, invites, webhooks, Git, writing secrets, the audit log) is not reachable through
 * Backstage at all.
 */
export interface ForwardedRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path below the API root, `:param` for one path segment. */
  path: string;
  /** Only tenant admins (the tenant's `admins` entity refs) may call it. */
  admin?: boolean;
}

export const FORWARDED_ROUTES: ForwardedRoute[] = [
  { method: 'GET', path: '/catalog' },
  { method: 'GET', path: '/catalog/:kind' },
  { method: 'POST', path: '/catalog/:kind/estimate' },
  { method: 'GET', path: '/orders' },
  { method: 'POST', path: '/orders' },
  { method: 'GET', path: '/orders/:id' },
  { method: 'POST', path: '/orders/:id/approve', admin: true },
  { method: 'POST', path: '/orders/:id/reject', admin: true },
  { method: 'GET', path: '/resources' },
  { method: 'GET', path: '/resources/unmanaged' },
  { method: 'GET', path: '/resources/:kind/:name/tree' },
  { method: 'GET', path: '/events' },
  { method: 'GET', path: '/services/:id/revisions' },
  // server-sent events; `tail` and `follow` pass as query parameters, the stream is piped through unbuffered
  { method: 'GET', path: '/services/:id/logs' },
  { method: 'GET', path: '/usage' },
  // billing data: the order service refuses members too, the plugin answers before asking it
  { method: 'GET', path: '/usage/invoice', admin: true },
  { method: 'GET', path: '/quotas' },
  // names and key names only: setting or deleting secrets is not reachable through Backstage
  { method: 'GET', path: '/secrets' },
  { method: 'GET', path: '/policies' },
  { method: 'PUT', path: '/policies/:kind/:action', admin: true },
  { method: 'DELETE', path: '/policies/:kind/:action', admin: true },
];

/** Request headers passed on to the order service (besides the tenant's API key, which the plugin adds). */
export const FORWARDED_REQUEST_HEADERS = ['accept', 'content-type', 'idempotency-key', 'last-event-id'];

/** Response headers passed back to the browser. */
export const FORWARDED_RESPONSE_HEADERS = ['content-type', 'retry-after', 'x-maxcloud-cluster'];
