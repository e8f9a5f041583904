/**
 * Resource files in a tenant repository are `<plural>/<name>.yaml`; entity names and annotations the plugins
 * share are defined here so the frontend, the catalog module and the scaffolder action agree on them.
 */
export const MAXCLOUD_ANNOTATIONS = {
  /** `<Kind>/<name>` of the max-cloud resource an entity represents, e.g. `App/shop`. */
  resource: 'maxcloud.dev/resource',
  /** The tenant (organisation slug) that owns the resource. */
  tenant: 'maxcloud.dev/tenant',
  /** The order that last changed the resource. */
  orderId: 'maxcloud.dev/order-id',
  /** The service type (catalog kind) of an API or Template entity. */
  kind: 'maxcloud.dev/kind',
} as const;

/** Splits the `maxcloud.dev/resource` annotation (`App/shop`) into kind and name. */
export function parseResourceRef(value: string | undefined): { kind: string; name: string } | undefined {
  const match = /^([A-Za-z][A-Za-z0-9]*)\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)$/.exec(value ?? '');
  return match ? { kind: match[1], name: match[2] } : undefined;
}
