import {
  errorSchemaAt,
  fieldMessage,
  formSchema,
  formUiSchema,
  mergeErrorSchemas,
  orderParameters,
  parameterPath,
} from './orderForm';
import { startTestMaxcloud, TestMaxcloud } from './testUtils';

describe('order form helpers', () => {
  let mc: TestMaxcloud;
  beforeAll(async () => {
    mc = await startTestMaxcloud('Helpers Co');
  });
  afterAll(() => mc?.server.stop());

  it('keeps only properties that exist in ui:order, the rest after them', async () => {
    for (const entry of await mc.client.catalog()) {
      const order = formUiSchema(entry)['ui:order'] as string[];
      const properties = Object.keys((entry.schema as any).properties);
      expect(order[order.length - 1]).toBe('*');
      expect(order.slice(0, -1).every(p => properties.includes(p))).toBe(true);
      expect(order.slice(0, -1)).toEqual(entry.ui_order.filter(p => properties.includes(p)));
    }
  });

  it('drops the formats only Kubernetes knows, not properties called format', async () => {
    const app = formSchema(await mc.client.catalogEntry('App')) as any;
    expect(app.properties.port.format).toBeUndefined();
    expect(app.properties.port.maximum).toBe(65535);
    expect(formSchema({ schema: { properties: { format: { type: 'string', format: 'email' } } } } as any)).toEqual({
      properties: { format: { type: 'string', format: 'email' } },
    });
  });

  it("places the order service's field errors in the form's error schema", () => {
    expect(parameterPath('parameters.scaling.maxScale')).toEqual(['scaling', 'maxScale']);
    expect(parameterPath('parameters.env[0].name')).toEqual(['env', '0', 'name']);
    expect(parameterPath('parameters')).toEqual([]);
    expect(parameterPath('name')).toBeUndefined();
    expect(errorSchemaAt(['scaling', 'maxScale'], 'too small')).toEqual({
      scaling: { maxScale: { __errors: ['too small'] } },
    });
    expect(errorSchemaAt([], 'bad')).toEqual({ __errors: ['bad'] });
    const both = mergeErrorSchemas(
      mergeErrorSchemas(undefined, errorSchemaAt(['scaling', 'maxScale'], 'too small')),
      mergeErrorSchemas(errorSchemaAt(['scaling', 'maxScale'], 'odd'), errorSchemaAt(['port'], 'bad port')),
    );
    expect(both).toEqual({ scaling: { maxScale: { __errors: ['too small', 'odd'] } }, port: { __errors: ['bad port'] } });
    expect(fieldMessage('parameters.a', 'parameters.a: must be set')).toBe('must be set');
    expect(fieldMessage('parameters.a', 'something else')).toBe('something else');
  });
});

describe('orderParameters', () => {
  it('leaves out the empty lists the form starts with, not required ones, and keeps the rest', () => {
    const schema = {
      type: 'object',
      required: ['targets'],
      properties: {
        args: { type: 'array', items: { type: 'string' } },
        targets: { type: 'array', items: { type: 'string' } },
        some: { type: 'array', minItems: 1, items: { type: 'string' } },
        env: { type: 'array', items: { type: 'object', properties: { tags: { type: 'array' } } } },
        scaling: { type: 'object', properties: { minScale: { type: 'integer' } } },
      },
    } as any;
    expect(
      orderParameters(
        { args: [], targets: [], some: [], env: [{ name: 'A', tags: [] }], scaling: { minScale: 0 }, image: 'x', gone: undefined },
        schema,
      ),
    ).toEqual({ targets: [], some: [], env: [{ name: 'A' }], scaling: { minScale: 0 }, image: 'x' });
  });
});
