import { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

export interface Config {
  /** The max-cloud order service this Backstage orders from. */
  maxcloud?: {
    /**
     * Base URL of the order service, e.g. `https://api.maxcloud.example` (its API is under `/api/v1`).
     * @visibility backend
     */
    baseUrl: string;
    /**
     * The max-cloud organisations (tenants) this Backstage acts for. A Backstage user acts for a tenant when
     * one of their ownership entity refs (their user and their groups) is listed in `members` or `admins`.
     */
    tenants: Array<{
      /** The organisation's slug, e.g. `acme-shop`. */
      slug: string;
      /**
       * API key (`mc_…`) the plugins use for this tenant. It never reaches the browser. Its user's role in the
       * organisation bounds what Backstage users can do; give it the admin role if Backstage admins should
       * approve and reject orders.
       * @visibility secret
       */
      apiKey: string;
      /** Entity refs (groups or users) whose members order as members, e.g. `group:default/shop-team`. */
      members?: string[];
      /** Entity refs whose members act as admins (approve and reject orders, change merge policies). */
      admins?: string[];
      /** Group that owns the tenant's entities in the catalog; default: the first of `admins`/`members`. */
      owner?: string;
    }>;
    /** The catalog entity provider of `@maxcloud/backstage-plugin-catalog-backend-module-maxcloud`. */
    catalog?: {
      /** How often the provider re-reads service types and resources; default every 5 minutes. */
      schedule?: SchedulerServiceTaskScheduleDefinitionConfig;
      /**
       * Owner of the API entities and Software Templates generated for the service types; default
       * `group:default/maxcloud-platform`.
       */
      owner?: string;
    };
  };
}
