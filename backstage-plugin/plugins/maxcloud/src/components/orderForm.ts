import type { ErrorSchema, RJSFSchema, UiSchema } from '@rjsf/utils';
import type { CatalogEntry } from '@maxcloud/backstage-plugin-maxcloud-common';

/** Number formats of Kubernetes' OpenAPI that JSON Schema validators do not know; the bounds still apply. */
const KUBERNETES_ONLY_FORMATS = new Set(['int32', 'int64', 'float', 'double', 'byte', 'int-or-string']);

/** The catalog's parameter schema as the form uses it (a copy, without formats only Kubernetes knows). */
export function formSchema(entry: CatalogEntry): RJSFSchema {
  return stripFormats(entry.schema ?? { type: 'object' }) as RJSFSchema;
}

function stripFormats(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripFormats);
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (key === 'format' && typeof value === 'string' && KUBERNETES_ONLY_FORMATS.has(value)) continue;
    if (key === 'properties' && value && typeof value === 'object') {
      // `properties` maps names to schemas: a property may well be called `format`
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, stripFormats(v)]),
      );
    } else {
      out[key] = stripFormats(value);
    }
  }
  return out;
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

/**
 * The form's data as parameters of an order: without the empty lists the form starts every list field with
 * (unless the schema asks for items), so the pull request shows only what was chosen. Defaults stay: they
 * are what the order service would fill in anyway, and the pull request documents them.
 */
export function orderParameters(data: unknown, schema: RJSFSchema | undefined): unknown {
  if (Array.isArray(data)) {
    const items = schema?.items && typeof schema.items === 'object' && !Array.isArray(schema.items)
      ? (schema.items as RJSFSchema)
      : undefined;
    return data.map(item => orderParameters(item, items));
  }
  if (!data || typeof data !== 'object') return data;
  const properties = (schema?.properties ?? {}) as Record<string, RJSFSchema>;
  const required = new Set(schema?.required ?? []);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if (value === undefined) continue;
    const sub = typeof properties[key] === 'object' ? properties[key] : undefined;
    if (Array.isArray(value) && value.length === 0 && !required.has(key) && !sub?.minItems) continue;
    out[key] = orderParameters(value, sub);
  }
  return out;
}

/** Idempotency key of one order attempt. */
export function newIdempotencyKey(): string {
  const c = globalThis.crypto as Crypto | undefined;
  if (c?.randomUUID) return `backstage-${c.randomUUID()}`;
  return `backstage-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** DNS-1123 label, as the order service requires for resource names. */
export const RESOURCE_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
