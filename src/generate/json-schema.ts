/**
 * JSON schemas for structured output, compiled into the nodes the JSON grammar (json-grammar.ts) walks.
 *
 * Supported: `type` (one or a list), `properties`, `required`, `additionalProperties`, `items`, `minItems`,
 * `maxItems`, `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, booleans and `null`,
 * and the annotations (`title`, `description`, `default`, `examples`, `$schema`, `$id`, `$comment`). Any other
 * keyword is a JsonSchemaError naming it, so a schema is never silently enforced only in part.
 *
 * Objects with `properties` are written with their declared properties only, in declaration order (optional ones
 * may be left out); an object schema without `properties` takes any keys (with `additionalProperties` as their
 * schema when it is one). Numbers are written as -?int(.frac)? with at most MAX_INT_DIGITS integer and
 * MAX_FRAC_DIGITS fraction digits, so every value parses exactly.
 */
import { JsonSchemaError } from '../errors.ts';

export type JsonSchema = boolean | { [keyword: string]: unknown };

export const MAX_INT_DIGITS = 15;
export const MAX_FRAC_DIGITS = 6;

export interface ObjectProperty {
  name: string;
  /** `"name":` as UTF-8, the bytes that introduce the property. */
  keyBytes: Uint8Array;
  value: SchemaNode;
  required: boolean;
}

/** Bounds on a number; `exclusive` makes the bound strict. */
export interface NumberBounds {
  min: number;
  minExclusive: boolean;
  max: number;
  maxExclusive: boolean;
}

export type SchemaNode = { id: number; minLen: number } & (
  | { kind: 'object'; props: ObjectProperty[]; free: SchemaNode | null }
  | { kind: 'array'; items: SchemaNode; minItems: number; maxItems: number }
  | { kind: 'string' }
  | { kind: 'number'; integer: boolean; bounds: NumberBounds }
  | { kind: 'literal'; options: Uint8Array[] }
  /** Alternatives told apart by their first byte (`type` lists, and `{}`: any JSON value). */
  | { kind: 'union'; alts: SchemaNode[] }
);

const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'readOnly', 'writeOnly', 'deprecated']);
const KEYWORDS = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'enum', 'const',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'uniqueItems',
]);
const TYPES = ['object', 'array', 'string', 'integer', 'number', 'boolean', 'null'] as const;
type TypeName = (typeof TYPES)[number];

const utf8 = new TextEncoder();
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeOf(v: unknown): TypeName | null {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (Array.isArray(v)) return 'array';
  if (isObject(v)) return 'object';
  return null;
}

/** A number being written: its sign, integer digits, whether the point is written, and fraction digits. */
export interface NumberText {
  neg: boolean;
  int: string;
  dot: boolean;
  frac: string;
}

/**
 * Fewest characters to append to `n` so that it is a complete number in `bounds` (0: it is one now), or Infinity
 * when no completion within the digit limits is in bounds. Every candidate is checked by parsing its text, so
 * this agrees exactly with a validator's comparison.
 */
export function numberMinExtra(integer: boolean, bounds: NumberBounds, n: NumberText): number {
  const sign = n.neg ? -1 : 1;
  // Is there a value m / 10^t (t decimals) with m in [mLo, mHi] that is in bounds?
  const fits = (mLo: number, mHi: number, t: number): boolean => {
    const scale = 10 ** t;
    const lo = n.neg ? -bounds.max : bounds.min;
    const hi = n.neg ? -bounds.min : bounds.max;
    const a = Math.max(mLo, Math.ceil(lo * scale - 1e-6));
    const b = Math.min(mHi, Math.floor(hi * scale + 1e-6));
    for (const m of new Set([a, a + 1, b - 1, b])) {
      if (m < a || m > b || m < mLo || m > mHi || (n.neg && m === 0)) continue; // no "-0"
      if (numberInBounds(sign * (m / scale), bounds) && numberInBounds(Number(`${n.neg ? '-' : ''}${m / scale}`), bounds)) return true;
    }
    return false;
  };
  let best = Infinity;
  if (n.dot) {
    const base = Number(n.int + n.frac);
    const len = n.int.length + n.frac.length;
    for (let t = Math.max(n.frac.length, 1); t <= MAX_FRAC_DIGITS && n.int.length + t <= MAX_INT_DIGITS; t++) {
      const k = t - n.frac.length;
      if (t - n.frac.length >= best) break;
      if (len + k <= MAX_INT_DIGITS && fits(base * 10 ** k, base * 10 ** k + 10 ** k - 1, t)) best = t - n.frac.length;
    }
    return best;
  }
  const I = n.int === '' ? 0 : Number(n.int);
  for (let k = 0; n.int.length + k <= MAX_INT_DIGITS; k++) {
    if (n.int === '' && k === 0) continue;
    if (n.int === '0' && k > 0) break;
    // Integer parts reachable by appending k digits.
    const lo = n.int === '' ? (k === 1 ? 0 : 10 ** (k - 1)) : I * 10 ** k;
    const hi = n.int === '' ? 10 ** k - 1 : I * 10 ** k + 10 ** k - 1;
    if (k < best && fits(lo, hi, 0)) best = k;
    const intLen = n.int.length + k;
    for (let t = 1; !integer && t <= MAX_FRAC_DIGITS && intLen + t <= MAX_INT_DIGITS; t++) {
      if (k + 1 + t >= best) break;
      if (fits(lo * 10 ** t, hi * 10 ** t + 10 ** t - 1, t)) best = k + 1 + t;
    }
  }
  return best;
}

/** Fewest characters of a whole number in `bounds`. */
export function minNumberLength(integer: boolean, bounds: NumberBounds): number {
  const blank = { int: '', dot: false, frac: '' };
  return Math.min(numberMinExtra(integer, bounds, { neg: false, ...blank }), 1 + numberMinExtra(integer, bounds, { neg: true, ...blank }));
}

export function numberInBounds(v: number, b: NumberBounds): boolean {
  return (b.minExclusive ? v > b.min : v >= b.min) && (b.maxExclusive ? v < b.max : v <= b.max);
}

class Compiler {
  private nextId = 0;
  private anyNode: SchemaNode | null = null;

  node<T extends Omit<SchemaNode, 'id'>>(n: T): SchemaNode {
    return { ...n, id: this.nextId++ } as SchemaNode;
  }

  fail(keyword: string, path: string, message: string): never {
    throw new JsonSchemaError(keyword, path, message);
  }

  /** Any JSON value: objects with any keys, arrays, strings, numbers, booleans, null. */
  any(): SchemaNode {
    if (this.anyNode) return this.anyNode;
    const any = this.node({ kind: 'union', alts: [], minLen: 1 });
    this.anyNode = any;
    const unbounded = { min: -Infinity, minExclusive: false, max: Infinity, maxExclusive: false };
    (any as { alts: SchemaNode[] }).alts.push(
      this.node({ kind: 'object', props: [], free: any, minLen: 2 }),
      this.node({ kind: 'array', items: any, minItems: 0, maxItems: Infinity, minLen: 2 }),
      this.node({ kind: 'string', minLen: 2 }),
      this.node({ kind: 'number', integer: false, bounds: unbounded, minLen: 1 }),
      this.literal([true, false, null]),
    );
    return any;
  }

  literal(values: unknown[]): SchemaNode {
    const options = values.map((v) => utf8.encode(JSON.stringify(v)));
    return this.node({ kind: 'literal', options, minLen: Math.min(...options.map((o) => o.length)) });
  }

  compile(schema: unknown, path: string): SchemaNode {
    if (schema === true) return this.any();
    if (schema === false) this.fail('false', path, 'allows no value at all; give a schema that some value matches.');
    if (!isObject(schema)) this.fail('type', path, `must be a schema object or a boolean, got ${Array.isArray(schema) ? 'an array' : typeof schema}.`);
    for (const k of Object.keys(schema)) {
      if (ANNOTATIONS.has(k) || KEYWORDS.has(k)) continue;
      this.fail(k, path, 'is not supported for structured output. Supported: type, properties, required, additionalProperties, items, minItems, maxItems, enum, const, minimum, maximum, exclusiveMinimum, exclusiveMaximum; remove it or restate the schema with these.');
    }
    if (schema.uniqueItems !== undefined && schema.uniqueItems !== false) this.fail('uniqueItems', path, 'is not supported for structured output (only false); remove it.');

    let types: TypeName[] | null = null;
    if (schema.type !== undefined) {
      const list = Array.isArray(schema.type) ? schema.type : [schema.type];
      if (list.length === 0) this.fail('type', path, 'is an empty list; name at least one type.');
      for (const t of list) if (!TYPES.includes(t as TypeName)) this.fail('type', path, `has "${String(t)}"; valid types are ${TYPES.join(', ')}.`);
      types = [...new Set(list as TypeName[])];
    }

    if (schema.enum !== undefined || schema.const !== undefined) return this.enumNode(schema, types, path);
    if (!types) {
      if (['properties', 'required', 'additionalProperties'].some((k) => k in schema)) types = ['object'];
      else if (['items', 'minItems', 'maxItems'].some((k) => k in schema)) types = ['array'];
      else if (['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].some((k) => k in schema)) types = ['number'];
      else return this.any();
    }
    if (types.includes('integer') && types.includes('number')) types = types.filter((t) => t !== 'integer');
    const alts = types.map((t) => this.typed(t, schema, path));
    if (alts.length === 1) return alts[0];
    return this.node({ kind: 'union', alts, minLen: Math.min(...alts.map((a) => a.minLen)) });
  }

  private enumNode(schema: Record<string, unknown>, types: TypeName[] | null, path: string): SchemaNode {
    const keyword = schema.const !== undefined ? 'const' : 'enum';
    let values: unknown[];
    if (keyword === 'const') values = [schema.const];
    else {
      if (!Array.isArray(schema.enum)) this.fail('enum', path, 'must be an array of values.');
      values = schema.enum;
    }
    const matches = (v: unknown) => {
      const t = typeOf(v);
      if (t === null) this.fail(keyword, path, `holds a value that is not JSON (${typeof v}).`);
      if (typeof v === 'number' && !Number.isFinite(v)) this.fail(keyword, path, `holds ${v}, which JSON cannot write.`);
      return !types || types.includes(t) || (t === 'integer' && types.includes('number'));
    };
    values = values.filter(matches);
    if (values.length === 0) this.fail(keyword, path, `allows no value${types ? ` of type ${types.join(' or ')}` : ''}; give at least one.`);
    return this.literal(values);
  }

  private typed(type: TypeName, s: Record<string, unknown>, path: string): SchemaNode {
    switch (type) {
      case 'string':
        return this.node({ kind: 'string', minLen: 2 });
      case 'boolean':
        return this.literal([true, false]);
      case 'null':
        return this.literal([null]);
      case 'integer':
      case 'number':
        return this.numberNode(type === 'integer', s, path);
      case 'array':
        return this.arrayNode(s, path);
      case 'object':
        return this.objectNode(s, path);
    }
  }

  private numberNode(integer: boolean, s: Record<string, unknown>, path: string): SchemaNode {
    const limit = 10 ** MAX_INT_DIGITS;
    const bound = (k: string): number | undefined => {
      const v = s[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(k, path, 'must be a finite number.');
      if (Math.abs(v) >= limit) this.fail(k, path, `is ${v}; structured output writes numbers below 1e${MAX_INT_DIGITS} in magnitude.`);
      return v;
    };
    const bounds: NumberBounds = { min: -limit, minExclusive: true, max: limit, maxExclusive: true };
    const min = bound('minimum');
    const max = bound('maximum');
    const xmin = bound('exclusiveMinimum');
    const xmax = bound('exclusiveMaximum');
    if (min !== undefined) Object.assign(bounds, { min, minExclusive: false });
    if (xmin !== undefined && xmin >= bounds.min) Object.assign(bounds, { min: xmin, minExclusive: true });
    if (max !== undefined) Object.assign(bounds, { max, maxExclusive: false });
    if (xmax !== undefined && xmax <= bounds.max) Object.assign(bounds, { max: xmax, maxExclusive: true });
    const minLen = minNumberLength(integer, bounds);
    if (minLen === Infinity) {
      this.fail(xmin !== undefined || xmax !== undefined ? 'exclusiveMinimum' : 'minimum', path, `and the maximum leave no ${integer ? 'integer' : `number with at most ${MAX_FRAC_DIGITS} decimals`}; widen the range.`);
    }
    return this.node({ kind: 'number', integer, bounds, minLen });
  }

  private arrayNode(s: Record<string, unknown>, path: string): SchemaNode {
    const count = (k: string, dflt: number): number => {
      const v = s[k];
      if (v === undefined) return dflt;
      if (!Number.isInteger(v) || (v as number) < 0) this.fail(k, path, 'must be an integer >= 0.');
      return v as number;
    };
    const minItems = count('minItems', 0);
    const maxItems = count('maxItems', Infinity);
    if (minItems > maxItems) this.fail('minItems', path, `is ${minItems}, more than maxItems ${maxItems}; no array fits.`);
    if (Array.isArray(s.items)) this.fail('items', path, 'as a list (tuple validation) is not supported; give one schema for every item.');
    const items = s.items === undefined ? this.any() : s.items === false ? null : this.compile(s.items, `${path}/items`);
    if (!items) {
      if (minItems > 0) this.fail('items', path, `is false but minItems is ${minItems}; no array fits.`);
      return this.node({ kind: 'array', items: this.any(), minItems: 0, maxItems: 0, minLen: 2 });
    }
    return this.node({ kind: 'array', items, minItems, maxItems, minLen: 2 + minItems * items.minLen + Math.max(0, minItems - 1) });
  }

  private objectNode(s: Record<string, unknown>, path: string): SchemaNode {
    const properties = s.properties ?? {};
    if (!isObject(properties)) this.fail('properties', path, 'must be an object mapping names to schemas.');
    const required = s.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== 'string')) this.fail('required', path, 'must be an array of property names.');
    const additional = s.additionalProperties;
    if (additional !== undefined && typeof additional !== 'boolean' && !isObject(additional)) this.fail('additionalProperties', path, 'must be a boolean or a schema.');
    const props: ObjectProperty[] = [];
    for (const [name, sub] of Object.entries(properties)) {
      const isRequired = required.includes(name);
      if (sub === false) {
        if (isRequired) this.fail('required', path, `names "${name}", whose schema is false; no object fits.`);
        continue;
      }
      props.push({ name, keyBytes: utf8.encode(`${JSON.stringify(name)}:`), value: this.compile(sub, `${path}/properties/${name}`), required: isRequired });
    }
    for (const name of new Set(required as string[])) {
      if (name in properties) continue;
      if (additional === false) this.fail('required', path, `names "${name}", which is not in properties and additionalProperties is false; add it to properties.`);
      const value = isObject(additional) ? this.compile(additional, `${path}/additionalProperties`) : this.any();
      props.push({ name, keyBytes: utf8.encode(`${JSON.stringify(name)}:`), value, required: true });
    }
    // Without declared properties, any key may appear unless additionalProperties is false.
    const free = props.length > 0 || additional === false ? null : isObject(additional) ? this.compile(additional, `${path}/additionalProperties`) : this.any();
    const req = props.filter((p) => p.required);
    const minLen = 2 + req.reduce((n, p) => n + p.keyBytes.length + p.value.minLen, 0) + Math.max(0, req.length - 1);
    return this.node({ kind: 'object', props, free, minLen });
  }
}

/**
 * Compiles a JSON schema into grammar nodes. Throws JsonSchemaError naming the keyword and where it is (a JSON
 * pointer into the schema) for a keyword that cannot be enforced and for a schema no value matches.
 */
export function compileJsonSchema(schema: unknown): SchemaNode {
  return new Compiler().compile(schema, '#');
}
