import express from 'express';
import Router from 'express-promise-router';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type {
  AuditorService,
  HttpAuthService,
  LoggerService,
  UserInfoService,
} from '@backstage/backend-plugin-api';
import { MaxcloudIdentity, MaxcloudRole } from '@maxcloud/backstage-plugin-maxcloud-common';
import {
  MaxcloudService,
  tenantHeaders,
  tenantsOf,
  TenantConfig,
} from '@maxcloud/backstage-plugin-maxcloud-node';
import {
  FORWARDED_REQUEST_HEADERS,
  FORWARDED_RESPONSE_HEADERS,
  FORWARDED_ROUTES,
} from './routes';

export interface RouterOptions {
  logger: LoggerService;
  httpAuth: HttpAuthService;
  userInfo: UserInfoService;
  auditor?: AuditorService;
  maxcloud: MaxcloudService;
}

/** The header a client names its tenant with when its user acts for several. */
export const TENANT_HEADER = 'x-maxcloud-tenant';

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/**
 * The Backstage user's path to the order service: `/api/maxcloud/<path>` → `<order service>/api/v1/<path>`.
 *
 * The user is authenticated by Backstage (their token, or a service token for other plugins on behalf of a
 * user); their ownership refs (user and groups) map to the configured tenants and roles; the request goes on
 * with that tenant's API key, which never leaves the backend. Errors answer in the order service's shape,
 * `{"error": {"code", "message", "field"?}}`, so the browser reads one kind of error.
 */
export async function createRouter(options: RouterOptions): Promise<express.Router> {
  const { logger, httpAuth, userInfo, maxcloud } = options;
  const router = Router();
  router.use(express.json({ limit: '1mb' }));

  /** The caller, their tenants, and the tenant of this request with their role in it. */
  async function caller(req: express.Request) {
    const credentials = await httpAuth.credentials(req, { allow: ['user'] });
    const info = await userInfo.getUserInfo(credentials);
    const tenants = tenantsOf(maxcloud.config, info.ownershipEntityRefs);
    const wanted = req.header(TENANT_HEADER) ?? (typeof req.query.tenant === 'string' ? req.query.tenant : undefined);
    let chosen: { tenant: TenantConfig; role: MaxcloudRole } | undefined;
    if (wanted !== undefined) {
      chosen = tenants.find(t => t.tenant.slug === wanted);
      if (!chosen) {
        throw new HttpError(
          403,
          'forbidden',
          `${info.userEntityRef} does not act for max-cloud tenant ${JSON.stringify(wanted)}`,
          TENANT_HEADER,
        );
      }
    } else {
      chosen = tenants[0];
    }
    return { user: info.userEntityRef, tenants, chosen };
  }

  router.get('/whoami', async (req, res) => {
    const { user, tenants } = await caller(req);
    const body: MaxcloudIdentity = {
      user,
      tenants: tenants.map(t => ({ slug: t.tenant.slug, role: t.role, group: t.tenant.owner })),
      orderServiceUrl: maxcloud.config.baseUrl,
    };
    res.json(body);
  });

  for (const route of FORWARDED_ROUTES) {
    const register = router[route.method.toLowerCase() as 'get' | 'post' | 'put' | 'delete'].bind(router);
    register(route.path, async (req: express.Request, res: express.Response) => {
      const { user, chosen } = await caller(req);
      if (!chosen) {
        throw new HttpError(
          403,
          'forbidden',
          `${user} acts for no max-cloud tenant: add them (or one of their groups) to maxcloud.tenants[].members`,
        );
      }
      if (route.admin && chosen.role !== 'admin') {
        throw new HttpError(
          403,
          'forbidden',
          `this action needs the admin role in ${chosen.tenant.slug}; ${user} is a member`,
        );
      }
      const event = options.auditor && req.method !== 'GET'
        ? await options.auditor.createEvent({
            eventId: 'maxcloud-request',
            severityLevel: 'medium',
            request: req,
            meta: { tenant: chosen.tenant.slug, method: req.method, path: req.path },
          })
        : undefined;
      try {
        await forward(req, res, chosen.tenant, maxcloud.config.baseUrl, user);
        await event?.success({ meta: { status: res.statusCode } });
      } catch (e) {
        await event?.fail({ error: e as Error });
        throw e;
      }
    });
  }

  router.use((_req: express.Request) => {
    throw new HttpError(404, 'not_found', `no such max-cloud endpoint: ${_req.method} ${_req.path}`);
  });

  router.use((error: Error, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = statusOf(error);
    const code =
      error instanceof HttpError
        ? error.code
        : { 400: 'malformed_request', 401: 'unauthorized', 403: 'forbidden' }[status] ?? 'internal';
    if (status >= 500) logger.error(`max-cloud ${req.method} ${req.path} failed`, error);
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(status).json({
      error: {
        code,
        message: status === 400 && code === 'malformed_request' ? `malformed JSON body: ${error.message}` : error.message,
        ...(error instanceof HttpError && error.field ? { field: error.field } : {}),
      },
    });
  });

  return router;
}

/** The HTTP status of an error: ours, Backstage's auth errors, express.json's parse failures, else 500. */
function statusOf(error: Error): number {
  if (error instanceof HttpError) return error.status;
  if (error.name === 'AuthenticationError') return 401;
  if (error.name === 'NotAllowedError') return 403;
  if ((error as { type?: string }).type === 'entity.parse.failed') return 400;
  return 500;
}

/** Sends the request on to the order service with the tenant's key and streams the answer back. */
async function forward(
  req: express.Request,
  res: express.Response,
  tenant: TenantConfig,
  baseUrl: string,
  user: string,
) {
  const headers = tenantHeaders(tenant, user);
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = req.header(name);
    if (value !== undefined) headers[name] = value;
  }
  const hasBody = req.method !== 'GET' && req.method !== 'DELETE';
  if (hasBody) headers['content-type'] = 'application/json';
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(req.query)) {
    if (key !== 'tenant' && typeof value === 'string') query.set(key, value);
  }
  const qs = query.toString();
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  let upstream: Response;
  try {
    upstream = await fetch(`${baseUrl}/api/v1${req.path}${qs ? `?${qs}` : ''}`, {
      method: req.method,
      headers,
      body: hasBody ? JSON.stringify(req.body ?? {}) : undefined,
      signal: abort.signal,
    });
  } catch (e) {
    throw new HttpError(502, 'unavailable', `the max-cloud order service at ${baseUrl} cannot be reached: ${(e as Error).message}`);
  }
  res.status(upstream.status);
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = upstream.headers.get(name);
    if (value !== null) res.setHeader(name, value);
  }
  if (upstream.status === 401) {
    // The tenant's key itself was refused: that is the Backstage operator's problem, not the user's.
    res.status(502).json({
      error: {
        code: 'unavailable',
        message: `the order service refused the API key configured for tenant ${tenant.slug} (maxcloud.tenants[].apiKey)`,
      },
    });
    return;
  }
  if ((upstream.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    // Server-sent events: no buffering or compression on the way, and stop upstream when the browser leaves.
    res.setHeader('cache-control', 'no-cache, no-transform');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
  }
  if (!upstream.body) {
    res.end();
    return;
  }
  const body = Readable.fromWeb(upstream.body as unknown as NodeReadableStream);
  body.on('error', () => res.end());
  body.pipe(res);
}
