import type { components } from './generated/openapi';

type Schemas = components['schemas'];

/** One orderable service type, derived from its XRD (`GET /api/v1/catalog`). */
export type CatalogEntry = Schemas['CatalogEntry'];
export type CatalogRule = Schemas['CatalogRule'];
/** An order and its history (`GET /api/v1/orders/{id}`). */
export type Order = Schemas['Order'];
export type OrderTransition = Schemas['OrderTransition'];
export type PullRequest = Schemas['PullRequest'];
export type CreateOrderRequest = Schemas['CreateOrderRequest'];
export type RejectOrderRequest = Schemas['RejectOrderRequest'];
/** A tenant resource as the order service knows it (`GET /api/v1/resources`). */
export type Resource = Schemas['Resource'];
/** A resource in the cluster with what its composition made (`GET /api/v1/resources/{kind}/{name}/tree`). */
export type ResourceNode = Schemas['ResourceNode'];
export type AuthStatus = Schemas['AuthStatus'];
export type MergePolicy = Schemas['MergePolicy'];
export type PriceList = Schemas['PriceList'];
/** A monthly price estimate at list prices (`CatalogEntry.price`, `POST /catalog/{kind}/estimate`). */
export type PriceEstimate = Schemas['PriceEstimate'];
/** One invalid field of a refused request (`error.fields`). */
export type FieldProblem = Schemas['FieldProblem'];
export type Usage = Schemas['Usage'];
export type ErrorBody = Schemas['ErrorBody'];
/** An App's revisions and its traffic split, as ordered and as served (`GET /api/v1/services/{id}/revisions`). */
export type Revisions = Schemas['Revisions'];
export type Revision = Schemas['Revision'];
export type TrafficTarget = Schemas['TrafficTarget'];
export type ServedRevisions = Schemas['ServedRevisions'];
export type ServedTarget = Schemas['ServedTarget'];
/** The organisation's limits (`null`: unlimited) and what is in use (`GET /api/v1/quotas`). */
export type Quota = Schemas['Quota'];
export type QuotaLimits = Schemas['QuotaLimits'];
export type QuotaUsed = Schemas['QuotaUsed'];
/** One month's usage as an invoice; admins only (`GET /api/v1/usage/invoice`). */
export type Invoice = Schemas['Invoice'];
export type InvoiceLine = Schemas['InvoiceLine'];
/** A secret's name and key names; its values never leave the order service (`GET /api/v1/secrets`). */
export type SecretInfo = Schemas['SecretInfo'];
/** One audit log entry (`GET /api/v1/audit`, admins only). */
export type AuditRecord = Schemas['AuditRecord'];

/**
 * One line a container of a service printed: the data of an SSE `log` event of
 * `GET /api/v1/services/{id}/logs` (the OpenAPI document describes the stream only as `text/event-stream`;
 * this is `maxcloud_api_model::LogLine`).
 */
export interface LogLine {
  /** When the container printed it (RFC 3339), if known. */
  time?: string;
  /** The revision whose pod printed it (`<service>-<revision>`), if the pod names one. */
  revision?: string;
  pod: string;
  container: string;
  line: string;
}
export type ErrorDetail = Schemas['ErrorDetail'];

/** Order states, in the order an order passes them. */
export const ORDER_STATES = [
  'accepted',
  'pr_open',
  'merged',
  'applied',
  'ready',
  'failed',
  'rejected',
  'superseded',
] as const;
export type OrderState = (typeof ORDER_STATES)[number];

/** States after which an order does not change any more. */
export const FINAL_ORDER_STATES: ReadonlySet<string> = new Set([
  'ready',
  'failed',
  'rejected',
  'superseded',
]);

/** `event: order` of `GET /api/v1/events`. */
export interface OrderEvent {
  order_id: string;
  kind: string;
  name: string;
  state: string;
  message?: string | null;
}

/** `event: service` of `GET /api/v1/events`: a resource's status or URL changed as the cluster reports it. */
export interface ServiceEvent {
  kind: string;
  name: string;
  status: string;
  url?: string | null;
  message?: string | null;
}

/** One server-sent event of `GET /api/v1/events`. `lagged`: the client must re-read what it shows. */
export type MaxcloudEvent =
  | { type: 'order'; id?: string; data: OrderEvent }
  | { type: 'service'; id?: string; data: ServiceEvent }
  | { type: 'lagged'; id?: string };

/** Role of a user in a max-cloud organisation. */
export type MaxcloudRole = 'admin' | 'member';

/**
 * Who the signed-in Backstage user is for max-cloud, as the `maxcloud` backend plugin maps them
 * (`GET /api/maxcloud/whoami`; not part of the order service's API).
 */
export interface MaxcloudIdentity {
  /** The Backstage user, e.g. `user:default/jane`. */
  user: string;
  /** The tenants the user may act for, with their role in each. Empty: the user belongs to none. */
  tenants: Array<{ slug: string; role: MaxcloudRole; group?: string }>;
  /** The order service's base URL (without the API key), for links. */
  orderServiceUrl: string;
}
