import type { ErrorSchema, RJSFSchema, UiSchema } from '@rjsf/utils';
import type { CatalogEntry } from '@maxcloud/backstage-plugin-maxcloud-common';

/** Number formats of Kubernetes' OpenAPI that JSON Schema validators do not know; the bounds still apply. */
const KUBERNETES_ONLY_FORMATS = new Set(['int32', 'int64', 'float', 'double', 'byte', 'int-or-string']);

/** The catalog's parameter schema as the form uses it (a copy, without formats only Kubernetes knows). */
export function formSchema(entry: CatalogEntry): RJSFSchema {
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (!node || typeof node !== 'object') return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (key === 'format' && typeof value === 'string' && KUBERNETES_ONLY_FORMATS.has(value)) continue;
      // `properties` maps names to schemas: a property may well be called `format`
      out[key] = key === 'properties' ? stripProperties(value) : strip(value);
    }
    return out;
  };
  const stripProperties = (props: unknown): unknown => {
    if (!props || typeof props !== 'object') return props;
    return Object.fromEntries(Object.entries(props as Record<string, unknown>).map(([k, v]) => [k, strip(v)]));
  };
  return strip(entry.schema ?? { type: 'object' }) as RJSFSchema;
}

/** `ui:order` from the type's `x-ui-order` (only properties that exist, the rest after them). */
export function formUiSchema(entry: CatalogEntry): UiSchema {
  const properties = Object.keys(((entry.schema as RJSFSchema | undefined)?.properties ?? {}) as object);
  const order = (entry.ui_order ?? []).filter(
    (name, i, all) => properties.includes(name) && all.indexOf(name) === i,
  );
  return {
    'ui:order': [...order, '*'],
    'ui:submitButtonOptions': { norender: true },
  };
}

/**
 * The path of an order service field error below `parameters` (`parameters.scaling.maxScale`,
 * `parameters.env[0].name`) as keys of the form's error schema; undefined for fields outside the parameters.
 */
export function parameterPath(field: string | undefined): string[] | undefined {
  if (!field) return undefined;
  const parts = field
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter(p => p.length > 0);
  if (parts[0] !== 'parameters') return undefined;
  return parts.slice(1);
}

/** An error schema (rjsf `extraErrors`) that puts `message` at `path` (the root for an empty path). */
export function errorSchemaAt(path: string[], message: string): ErrorSchema {
  const root: Record<string, any> = {};
  let node = root;
  for (const key of path) {
    node[key] = {};
    node = node[key];
  }
  node.__errors = [message];
  return root as ErrorSchema;
}

/** Both error schemas in one (errors at the same field are kept side by side). */
export function mergeErrorSchemas(a: ErrorSchema | undefined, b: ErrorSchema): ErrorSchema {
  if (!a) return b;
  const out: Record<string, any> = { ...(a as Record<string, any>) };
  for (const [key, value] of Object.entries(b as Record<string, any>)) {
    if (key === '__errors') out.__errors = [...(out.__errors ?? []), ...value];
    else out[key] = key in out ? mergeErrorSchemas(out[key], value) : value;
  }
  return out as ErrorSchema;
}

/** The order service's message without the field path it starts with (`parameters.x: must …` → `must …`). */
export function fieldMessage(field: string, message: string): string {
  const prefix = `${field}: `;
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}

/** Idempotency key of one order attempt. */
export function newIdempotencyKey(): string {
  const c = globalThis.crypto as Crypto | undefined;
  if (c?.randomUUID) return `backstage-${c.randomUUID()}`;
  return `backstage-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** DNS-1123 label, as the order service requires for resource names. */
export const RESOURCE_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
