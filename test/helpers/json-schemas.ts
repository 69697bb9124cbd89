/** JSON schemas that structured-output tests run on: nested objects, arrays, enums, bounded numbers, free objects. */
export const SCHEMAS: Record<string, Record<string, unknown>> = {
  person: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      age: { type: 'integer', minimum: 0, maximum: 130 },
      email: { type: ['string', 'null'] },
      admin: { type: 'boolean' },
    },
    required: ['name', 'age'],
    additionalProperties: false,
  },
  nested: {
    type: 'object',
    properties: {
      id: { const: 'order-1' },
      status: { enum: ['open', 'closed', 12, null, { a: [1] }] },
      items: {
        type: 'array',
        minItems: 1,
        maxItems: 3,
        items: {
          type: 'object',
          properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1, maximum: 9 }, price: { type: 'number', minimum: 0.5, exclusiveMaximum: 100 } },
          required: ['sku', 'qty', 'price'],
          additionalProperties: false,
        },
      },
      tags: { type: 'array', items: { type: 'string' }, maxItems: 2 },
      note: { type: 'null' },
    },
    required: ['id', 'status', 'items'],
    additionalProperties: false,
  },
  numbers: {
    type: 'array',
    minItems: 2,
    maxItems: 6,
    items: { type: 'number', minimum: -2.5, maximum: 1000.125 },
  },
  negative: { type: 'integer', exclusiveMinimum: -1000, maximum: -7 },
  free: { type: 'object' },
};
