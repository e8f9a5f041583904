import { createHash } from 'node:crypto';
import {
  CompoundEntityRef,
  stringifyEntityRef,
} from '@backstage/catalog-model';

const MAX_NAME = 63;

/**
 * The catalog entity of a tenant's max-cloud resource, as the catalog module emits it and the scaffolder
 * action links to it: a Component named like the App for Apps, a Resource `<kind>-<name>` (kind in lowercase,
 * e.g. `database-shop-db`) for every other kind, so names stay unique per kind; in the namespace of the
 * tenant. Names that would exceed 63 characters are shortened with a hash suffix.
 */
export function resourceEntityRefOf(
  tenant: string,
  kind: string,
  name: string,
): CompoundEntityRef {
  if (kind === 'App') return { kind: 'Component', namespace: tenant, name };
  const full = `${kind.toLowerCase()}-${name}`;
  const short =
    full.length <= MAX_NAME
      ? full
      : `${full.slice(0, MAX_NAME - 9).replace(/-+$/, '')}-${createHash(
          'sha256',
        )
          .update(full)
          .digest('hex')
          .slice(0, 8)}`;
  return { kind: 'Resource', namespace: tenant, name: short };
}

/** {@link resourceEntityRefOf} as a string, e.g. `component:acme-shop/shop`. */
export function resourceEntityRef(
  tenant: string,
  kind: string,
  name: string,
): string {
  return stringifyEntityRef(resourceEntityRefOf(tenant, kind, name));
}
