import {
  ANNOTATION_LOCATION,
  ANNOTATION_ORIGIN_LOCATION,
  Entity,
  EntityLink,
} from '@backstage/catalog-model';
import {
  CatalogEntry,
  MAXCLOUD_ANNOTATIONS,
  Resource,
} from '@maxcloud/backstage-plugin-maxcloud-common';
import {
  resourceEntityRefOf,
  TenantConfig,
} from '@maxcloud/backstage-plugin-maxcloud-node';

/** The status of a resource as the order service reports it (`pending`, `ready`, `failed`, `deleting`). */
export const MAXCLOUD_STATUS_ANNOTATION = 'maxcloud.dev/status';

/** The id of the scaffolder action the generated templates use. */
const ORDER_ACTION = 'maxcloud:order:create';
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';
/** Fields of the templates' first step; a type parameter of the same name is renamed in the form. */
const RESERVED = new Set(['name', 'tenant']);
/** Integer formats of the Kubernetes schemas that JSON Schema form validators do not know. */
const NON_STANDARD_FORMATS = new Set([
  'int32',
  'int64',
  'float',
  'double',
  'byte',
  'binary',
]);

/** What the entities of the provider need besides the order service's data. */
export interface EntityContext {
  /** The order service, e.g. `https://api.maxcloud.example` (without `/api/v1`). */
  baseUrl: string;
  /** Owner of the API and Template entities, e.g. `group:default/maxcloud-platform`. */
  platformOwner: string;
  /** The configured tenants' slugs: the choices of the templates' tenant field. */
  tenantSlugs: string[];
  /** Backstage's `app.baseUrl`, for links to the portal's order pages; none without it. */
  appBaseUrl?: string;
}

/** `App` → `app`, `DNSRecord` → `dnsrecord`. */
function lower(kind: string): string {
  return kind.toLowerCase();
}

function locationAnnotations(location: string): Record<string, string> {
  return {
    [ANNOTATION_LOCATION]: location,
    [ANNOTATION_ORIGIN_LOCATION]: location,
  };
}

/**
 * The API entity of a service type: its parameters' JSON Schema as the API definition.
 */
export function apiEntityOf(
  entry: CatalogEntry,
  context: EntityContext,
): Entity {
  const entryUrl = `${context.baseUrl}/api/v1/catalog/${entry.plural}`;
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'API',
    metadata: {
      name: `maxcloud-${lower(entry.kind)}`,
      title: `max-cloud ${entry.kind}`,
      description: entry.description,
      tags: ['maxcloud', lower(entry.kind)],
      annotations: {
        ...locationAnnotations(`url:${context.baseUrl}/api/v1/catalog`),
        [MAXCLOUD_ANNOTATIONS.kind]: entry.kind,
      },
      links: [
        {
          url: entryUrl,
          title: `${entry.kind} in the max-cloud catalog`,
          type: 'catalog',
        },
      ],
    },
    spec: {
      type: 'json-schema',
      lifecycle: 'production',
      owner: context.platformOwner,
      definition: JSON.stringify(entry.schema, null, 2),
    },
  };
}

/**
 * The Software Template that orders a service type: a first page with the name and the tenant, a second with
 * the type's parameters (their JSON Schema with defaults, titles and `ui:order`), and one step with
 * `maxcloud:order:create`.
 */
export function templateEntityOf(
  entry: CatalogEntry,
  context: EntityContext,
): Entity {
  const schema = entry.schema as JsonSchema;
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  /** Form field of each parameter; parameters called like a field of the first page are prefixed. */
  const fieldOf = (property: string) =>
    RESERVED.has(property) ? `${lower(entry.kind)}_${property}` : property;

  const identity: JsonSchema = {
    title: entry.kind,
    description: `Name and tenant of the new ${entry.kind}.`,
    required: ['name', 'tenant'],
    properties: {
      name: {
        title: 'Name',
        type: 'string',
        description: `Name of the ${entry.kind}: lowercase letters, digits and "-", at most 63 characters; unique among the tenant's ${entry.plural}.`,
        pattern: DNS_LABEL,
        maxLength: 63,
        'ui:autofocus': true,
      },
      tenant: {
        title: 'Tenant',
        type: 'string',
        description: 'The max-cloud organisation that orders and owns it.',
        ...(context.tenantSlugs.length > 0
          ? { enum: context.tenantSlugs }
          : {}),
        ...(context.tenantSlugs.length === 1
          ? { default: context.tenantSlugs[0] }
          : {}),
      },
    },
  };

  const fields = Object.keys(properties);
  const formProperties = Object.fromEntries(
    fields.map(property => {
      const field = formSchema(properties[property]);
      if (RESERVED.has(property))
        field.title = `${field.title ?? property} (${entry.kind})`;
      return [fieldOf(property), field];
    }),
  );
  const ordered = entry.ui_order.filter(p => fields.includes(p)).map(fieldOf);
  const settings: JsonSchema = {
    title: `${entry.kind} settings`,
    description: entry.description,
    properties: formProperties,
    ...(Array.isArray(schema.required) && schema.required.length > 0
      ? { required: (schema.required as string[]).map(fieldOf) }
      : {}),
    'ui:order': ordered.length < fields.length ? [...ordered, '*'] : ordered,
  };

  return {
    apiVersion: 'scaffolder.backstage.io/v1beta3',
    kind: 'Template',
    metadata: {
      name: `maxcloud-order-${lower(entry.kind)}`,
      title: `Order ${entry.kind}`,
      description: entry.description,
      tags: ['maxcloud', lower(entry.kind)],
      annotations: {
        ...locationAnnotations(`url:${context.baseUrl}/api/v1/catalog`),
        [MAXCLOUD_ANNOTATIONS.kind]: entry.kind,
      },
    },
    spec: {
      owner: context.platformOwner,
      type: entry.kind === 'App' ? 'service' : 'resource',
      parameters: fields.length > 0 ? [identity, settings] : [identity],
      steps: [
        {
          id: 'order',
          name: `Order ${entry.kind}`,
          action: ORDER_ACTION,
          input: {
            kind: entry.kind,
            name: '${{ parameters.name }}',
            tenant: '${{ parameters.tenant }}',
            parameters: Object.fromEntries(
              fields.map(property => [
                property,
                `\${{ parameters.${fieldOf(property)} }}`,
              ]),
            ),
          },
        },
      ],
      output: {
        links: [
          {
            title: 'Pull request',
            url: '${{ steps.order.output.pullRequestUrl }}',
          },
          {
            title: `Open the ${entry.kind}`,
            icon: 'web',
            url: '${{ steps.order.output.resourceUrl }}',
            // A boolean: an `if` that renders to nothing (no resourceUrl yet) would keep the link.
            if: '${{ steps.order.output.resourceUrl | length > 0 }}',
          },
          {
            title: 'View in the catalog',
            icon: 'catalog',
            entityRef: '${{ steps.order.output.entityRef }}',
          },
        ],
      },
    },
  };
}

/**
 * A tenant's resource: a Component (type `service`) for an App, a Resource (type = the kind in lowercase) for
 * anything else; in the tenant's namespace, owned by the tenant's group.
 */
export function resourceEntityOf(
  resource: Resource,
  tenant: TenantConfig,
  context: EntityContext,
): Entity {
  const ref = resourceEntityRefOf(tenant.slug, resource.kind, resource.name);
  const links: EntityLink[] = [];
  if (resource.url)
    links.push({
      url: resource.url,
      title: `Open ${resource.name}`,
      icon: 'web',
    });
  if (context.appBaseUrl) {
    links.push({
      url: `${context.appBaseUrl}/maxcloud/orders/${encodeURIComponent(
        resource.order_id,
      )}`,
      title: 'Last order',
    });
  }
  const location = `url:${context.baseUrl}/api/v1/resources`;
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: ref.kind,
    metadata: {
      name: ref.name,
      namespace: ref.namespace,
      title:
        resource.kind === 'App'
          ? resource.name
          : `${resource.name} (${resource.kind})`,
      description: `${resource.kind} ${resource.name} of the max-cloud tenant ${tenant.slug}`,
      tags: ['maxcloud', lower(resource.kind)],
      annotations: {
        ...locationAnnotations(location),
        [MAXCLOUD_ANNOTATIONS.resource]: `${resource.kind}/${resource.name}`,
        [MAXCLOUD_ANNOTATIONS.tenant]: tenant.slug,
        [MAXCLOUD_ANNOTATIONS.orderId]: resource.order_id,
        [MAXCLOUD_STATUS_ANNOTATION]: resource.status,
      },
      ...(links.length > 0 ? { links } : {}),
    },
    spec: {
      type: resource.kind === 'App' ? 'service' : lower(resource.kind),
      lifecycle: 'production',
      owner: tenant.owner,
    },
  };
}

type JsonSchema = { [key: string]: any };

/**
 * A copy of a parameter's schema for the form: without `$schema` and without the Kubernetes integer formats
 * (`int32`, …) that form validators reject as unknown; everything else (defaults, titles, enums, bounds,
 * patterns) stays.
 */
function formSchema(schema: JsonSchema): JsonSchema {
  if (Array.isArray(schema)) return schema.map(formSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$schema') continue;
    if (
      key === 'format' &&
      typeof value === 'string' &&
      NON_STANDARD_FORMATS.has(value)
    )
      continue;
    if (key === 'properties' && value && typeof value === 'object') {
      out[key] = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, formSchema(v as JsonSchema)]),
      );
    } else if (
      key === 'default' ||
      key === 'enum' ||
      key === 'examples' ||
      key === 'const'
    ) {
      out[key] = value;
    } else {
      out[key] =
        typeof value === 'object' && value !== null ? formSchema(value) : value;
    }
  }
  return out;
}
