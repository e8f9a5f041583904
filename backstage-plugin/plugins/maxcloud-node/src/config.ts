import { Config } from '@backstage/config';
import { parseEntityRef, stringifyEntityRef } from '@backstage/catalog-model';
import { InputError } from '@backstage/errors';
import { MaxcloudClient, MaxcloudRole } from '@maxcloud/backstage-plugin-maxcloud-common';

/** One tenant of the `maxcloud.tenants` configuration, validated. */
export interface TenantConfig {
  slug: string;
  apiKey: string;
  /** Normalised entity refs (`group:default/shop-team`). */
  members: string[];
  admins: string[];
  /** Entity ref of the group that owns the tenant's catalog entities. */
  owner: string;
}

/** The `maxcloud` configuration, validated. */
export interface MaxcloudConfig {
  /** The order service, e.g. `https://api.maxcloud.example`. */
  baseUrl: string;
  tenants: TenantConfig[];
}

const SLUG = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Reads and checks the `maxcloud` configuration. Every problem names its configuration key, so a wrong
 * setting fails the backend's start instead of a user's order.
 */
export function readMaxcloudConfig(root: Config): MaxcloudConfig {
  const config = root.getConfig('maxcloud');
  const baseUrl = config.getString('baseUrl').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/\s]+/.test(baseUrl)) {
    throw new InputError(`maxcloud.baseUrl must be an http(s) URL, got ${JSON.stringify(baseUrl)}`);
  }
  const seen = new Set<string>();
  const tenants = config.getConfigArray('tenants').map((tenant, index) => {
    const at = `maxcloud.tenants[${index}]`;
    const slug = tenant.getString('slug');
    if (!SLUG.test(slug)) {
      throw new InputError(`${at}.slug must be an organisation slug (DNS label), got ${JSON.stringify(slug)}`);
    }
    if (seen.has(slug)) throw new InputError(`${at}.slug ${slug} is configured twice`);
    seen.add(slug);
    const apiKey = tenant.getString('apiKey');
    if (!/^mc_[0-9a-f]{16,}$/.test(apiKey)) {
      throw new InputError(`${at}.apiKey must be a max-cloud API key (mc_…)`);
    }
    const refs = (key: 'members' | 'admins') =>
      (tenant.getOptionalStringArray(key) ?? []).map((ref, i) => normaliseRef(ref, `${at}.${key}[${i}]`));
    const members = refs('members');
    const admins = refs('admins');
    if (members.length === 0 && admins.length === 0) {
      throw new InputError(`${at} needs members or admins: nobody could act for tenant ${slug}`);
    }
    const ownerText = tenant.getOptionalString('owner');
    const owner = ownerText
      ? normaliseRef(ownerText, `${at}.owner`, 'group')
      : [...admins, ...members].find(ref => ref.startsWith('group:')) ?? [...admins, ...members][0];
    return { slug, apiKey, members, admins, owner };
  });
  return { baseUrl, tenants };
}

function normaliseRef(ref: string, at: string, defaultKind = 'group'): string {
  try {
    return stringifyEntityRef(parseEntityRef(ref, { defaultKind, defaultNamespace: 'default' })).toLowerCase();
  } catch (e) {
    throw new InputError(`${at} is not an entity ref (kind:namespace/name): ${JSON.stringify(ref)}`);
  }
}

/**
 * The tenants a Backstage user may act for, with their role: `admin` when one of their ownership refs is in
 * the tenant's `admins`, `member` when one is in `members`. Sorted by slug.
 */
export function tenantsOf(
  config: MaxcloudConfig,
  ownershipEntityRefs: string[],
): Array<{ tenant: TenantConfig; role: MaxcloudRole }> {
  const refs = new Set(ownershipEntityRefs.map(ref => ref.toLowerCase()));
  return config.tenants
    .flatMap((tenant): Array<{ tenant: TenantConfig; role: MaxcloudRole }> => {
      if (tenant.admins.some(ref => refs.has(ref))) return [{ tenant, role: 'admin' }];
      if (tenant.members.some(ref => refs.has(ref))) return [{ tenant, role: 'member' }];
      return [];
    })
    .sort((a, b) => a.tenant.slug.localeCompare(b.tenant.slug));
}

/** Header naming the Backstage user a call is made for; the order service records it beside the key's user. */
export const ON_BEHALF_OF_HEADER = 'x-maxcloud-on-behalf-of';

/**
 * The headers a call to the order service for `tenant` carries: the tenant's API key and, when given, the
 * Backstage user it is made for (recorded by the order service as who asked, beside the key's user).
 */
export function tenantHeaders(tenant: TenantConfig, onBehalfOf?: string): Record<string, string> {
  return {
    authorization: `Bearer ${tenant.apiKey}`,
    ...(onBehalfOf ? { [ON_BEHALF_OF_HEADER]: onBehalfOf } : {}),
  };
}

/** A client of the order service that acts with the tenant's API key. Only ever on the server side. */
export function clientForTenant(
  config: MaxcloudConfig,
  tenant: TenantConfig,
  onBehalfOf?: string,
): MaxcloudClient {
  return new MaxcloudClient({
    baseUrl: `${config.baseUrl}/api/v1`,
    headers: tenantHeaders(tenant, onBehalfOf),
  });
}
