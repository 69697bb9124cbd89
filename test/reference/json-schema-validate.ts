/**
 * Reference validator for the JSON schema keywords structured output supports (type, properties, required,
 * additionalProperties, items, minItems, maxItems, enum, const, minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum), written from the JSON Schema 2020-12 validation spec, independent of the grammar. Returns
 * the first violation as "path: what", or null when the value matches.
 */
type Schema = boolean | Record<string, unknown>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeMatches(v: unknown, t: string): boolean {
  switch (t) {
    case 'null':
      return v === null;
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'array':
      return Array.isArray(v);
    case 'object':
      return isObject(v);
  }
  throw new Error(`unknown type ${t}`);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

export function validateJson(value: unknown, schema: Schema, path = '$'): string | null {
  if (schema === true) return null;
  if (schema === false) return `${path}: no value allowed`;
  const s = schema;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    if (!types.some((t) => typeMatches(value, t))) return `${path}: not of type ${types.join('|')}`;
  }
  if (s.const !== undefined && !deepEqual(value, s.const)) return `${path}: not the const`;
  if (Array.isArray(s.enum) && !s.enum.some((e) => deepEqual(value, e))) return `${path}: not in the enum`;
  if (typeof value === 'number') {
    if (typeof s.minimum === 'number' && !(value >= s.minimum)) return `${path}: ${value} < minimum ${s.minimum}`;
    if (typeof s.maximum === 'number' && !(value <= s.maximum)) return `${path}: ${value} > maximum ${s.maximum}`;
    if (typeof s.exclusiveMinimum === 'number' && !(value > s.exclusiveMinimum)) return `${path}: ${value} <= exclusiveMinimum`;
    if (typeof s.exclusiveMaximum === 'number' && !(value < s.exclusiveMaximum)) return `${path}: ${value} >= exclusiveMaximum`;
  }
  if (Array.isArray(value)) {
    if (typeof s.minItems === 'number' && value.length < s.minItems) return `${path}: fewer than ${s.minItems} items`;
    if (typeof s.maxItems === 'number' && value.length > s.maxItems) return `${path}: more than ${s.maxItems} items`;
    if (s.items !== undefined) {
      for (let i = 0; i < value.length; i++) {
        const e = validateJson(value[i], s.items as Schema, `${path}[${i}]`);
        if (e) return e;
      }
    }
  }
  if (isObject(value)) {
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const r of (s.required ?? []) as string[]) if (!(r in value)) return `${path}: missing required "${r}"`;
    for (const [k, v] of Object.entries(value)) {
      const sub = k in props ? props[k] : s.additionalProperties === undefined ? true : (s.additionalProperties as Schema);
      const e = validateJson(v, sub, `${path}.${k}`);
      if (e) return e;
    }
  }
  return null;
}
