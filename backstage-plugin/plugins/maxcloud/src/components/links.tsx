import { createContext, ReactNode, useContext, useMemo } from 'react';

/** Paths of the max-cloud page's views, below the page's mount path. */
export interface MaxcloudLinks {
  marketplace(): string;
  orderForm(kind: string): string;
  order(id: string): string;
  services(): string;
  service(kind: string, name: string): string;
  /** The form that changes a resource (an `update` order). */
  serviceEdit(kind: string, name: string): string;
  reviews(): string;
  /** The organisation's quotas, invoice preview (admins) and secrets. */
  costs(): string;
}

export function maxcloudLinks(base: string, tenant?: string): MaxcloudLinks {
  const root = base.replace(/\/+$/, '');
  const query = tenant ? `?tenant=${encodeURIComponent(tenant)}` : '';
  const at = (path: string) => `${root}${path}${query}`;
  return {
    marketplace: () => at('/'),
    orderForm: kind => at(`/order/${encodeURIComponent(kind)}`),
    order: id => at(`/orders/${encodeURIComponent(id)}`),
    services: () => at('/services'),
    service: (kind, name) => at(`/services/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`),
    serviceEdit: (kind, name) =>
      at(`/services/${encodeURIComponent(kind)}/${encodeURIComponent(name)}/edit`),
    reviews: () => at('/reviews'),
    costs: () => at('/costs'),
  };
}

const LinksContext = createContext<MaxcloudLinks>(maxcloudLinks(''));

/** Links below `base`; with `tenant`, each link names the tenant it is about (`?tenant=`). */
export function MaxcloudLinksProvider(props: { base: string; tenant?: string; children: ReactNode }) {
  const links = useMemo(() => maxcloudLinks(props.base, props.tenant), [props.base, props.tenant]);
  return <LinksContext.Provider value={links}>{props.children}</LinksContext.Provider>;
}

export function useMaxcloudLinks(): MaxcloudLinks {
  return useContext(LinksContext);
}
