// Structured output on the CPU: schema compilation, the JSON grammar's costs, and token masks over the real
// 32,000-piece Llama 2 vocab, driven by a seeded random "model" that picks any allowed token. Every finished
// output must parse, match the schema (test/reference/json-schema-validate.ts) and be valid UTF-8.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { JsonSchemaError } from '../../src/errors.ts';
import { initialState, isComplete, isDone, step, type JsonState } from '../../src/generate/json-grammar.ts';
import { jsonConstraint, tokenBytes, TokenTrie, walkMask } from '../../src/generate/json-mask.ts';
import { compileJsonSchema } from '../../src/generate/json-schema.ts';
import { readModelProto } from '../../src/tokenizer/proto.ts';
import type { Vocab } from '../../src/tokenizer/vocab.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';
import { rng } from '../helpers/random.ts';
import { validateJson } from '../reference/json-schema-validate.ts';
import { SCHEMAS } from '../helpers/json-schemas.ts';


/** Picks uniformly among the allowed tokens until the output is done; max_tokens is the schema's least plus `slack`. */
function randomRun(vocab: Vocab, schema: unknown, seed: number, slack: number) {
  const c = jsonConstraint(vocab, schema, vocab.eosId);
  const maxTokens = c.minTokens + slack;
  const r = rng(seed);
  const bytes: number[] = [];
  let tokens = 0;
  let eos = false;
  while (tokens < maxTokens && !c.done) {
    const mask = c.mask(maxTokens - tokens);
    const allowed: number[] = [];
    for (let id = 0; id < vocab.pieces.length; id++) if (mask[id >>> 5] & (1 << (id & 31))) allowed.push(id);
    expect(allowed.length).toBeGreaterThan(0);
    const id = allowed[Math.floor(r() * allowed.length)];
    c.accept(id);
    tokens++;
    if (id === vocab.eosId) {
      eos = true;
      break;
    }
    bytes.push(...tokenBytes(vocab, id)!);
  }
  return { text: new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes)), tokens, maxTokens, complete: c.complete, done: c.done || eos };
}

const haveTokenizer = haveSharedModel('llama2-tokenizer/tokenizer.model');
const vocab = haveTokenizer ? readModelProto(readFileSync(sharedModel('llama2-tokenizer/tokenizer.model'))).vocab : null!;

describe('JSON schema compilation', () => {
  it.each([
    [{ type: 'string', pattern: '^a' }, 'pattern', '#'],
    [{ type: 'object', properties: { a: { type: 'string', maxLength: 3 } } }, 'maxLength', '#/properties/a'],
    [{ anyOf: [{ type: 'string' }] }, 'anyOf', '#'],
    [{ type: 'strin' }, 'type', '#'],
    [{ enum: [] }, 'enum', '#'],
    [{ type: 'integer', minimum: 5, maximum: 4 }, 'minimum', '#'],
    [{ type: 'integer', minimum: 0.2, maximum: 0.8 }, 'minimum', '#'],
    [{ type: 'array', minItems: 3, maxItems: 2 }, 'minItems', '#'],
    [{ type: 'array', items: [{ type: 'string' }] }, 'items', '#'],
    [{ type: 'object', properties: {}, required: ['x'], additionalProperties: false }, 'required', '#'],
    [{ type: 'array', uniqueItems: true }, 'uniqueItems', '#'],
    [{ type: 'number', maximum: 1e20 }, 'maximum', '#'],
  ])('refuses %j naming %s at %s', (schema, keyword, path) => {
    let err: unknown;
    try {
      compileJsonSchema(schema);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JsonSchemaError);
    expect((err as JsonSchemaError).keyword).toBe(keyword);
    expect((err as JsonSchemaError).path).toBe(path);
    expect((err as Error).message).toContain(`"${keyword}"`);
  });

  it('gives each node the length of its shortest value', () => {
    expect(compileJsonSchema(SCHEMAS.person).minLen).toBe('{"name":"","age":0}'.length);
    expect(compileJsonSchema({ type: 'integer', minimum: 100, maximum: 200 }).minLen).toBe(3);
    expect(compileJsonSchema({ type: 'number', minimum: 0.25, maximum: 0.3 }).minLen).toBe(3); // 0.3
    expect(compileJsonSchema(SCHEMAS.negative).minLen).toBe(2); // -7
    expect(compileJsonSchema({ type: 'array', minItems: 2, items: { enum: ['ab', 'c'] } }).minLen).toBe('["c","c"]'.length);
  });
});

/** Every state reachable by bytes from printable ASCII, breadth first, up to `limit` states. */
function reachable(s0: JsonState, limit: number): JsonState[] {
  const out = [s0];
  const bytes = Array.from({ length: 0x5f }, (_, i) => 0x20 + i);
  for (let i = 0; i < out.length && out.length < limit; i++) {
    for (const b of bytes) {
      const n = step(out[i], b);
      if (n) out.push(n);
    }
  }
  return out;
}

describe('JSON grammar', () => {
  it.each(Object.keys(SCHEMAS))('cost of a %s state is exactly its shortest completion', (name) => {
    // cost(s) = 0 when complete, else 1 + min over bytes of cost(step(s, b)): the budget is never underestimated.
    for (const s of reachable(initialState(compileJsonSchema(SCHEMAS[name])), 3000)) {
      let best = Infinity;
      for (let b = 0x20; b < 0x7f; b++) {
        const n = step(s, b);
        if (n) best = Math.min(best, 1 + n.cost);
      }
      if (isComplete(s)) expect(s.cost).toBe(0);
      else expect(s.cost).toBe(best);
    }
  });

  it('accepts compact JSON and at most one space after ":" and ","', () => {
    const run = (text: string) => {
      let s: JsonState | null = initialState(compileJsonSchema(SCHEMAS.person));
      for (const b of new TextEncoder().encode(text)) if (s) s = step(s, b);
      return s;
    };
    expect(isDone(run('{"name":"Ann \\u00e9 é","age":7}')!)).toBe(true);
    expect(isDone(run(' {"name": "x", "age": 130, "admin": true}')!)).toBe(true);
    expect(run('{"name":"x","age":131}')).toBeNull();
    expect(run('{"name":"x", "age":01}')).toBeNull();
    expect(run('{"name":"x",  "age":1}')).toBeNull();
    expect(run('{"age":1,"name":"x"}')).toBeNull(); // declaration order
    expect(run('{"name":"x"}')).toBeNull(); // age is required
    expect(run('{"name":"\u0001"}')).toBeNull();
    expect(run('{"name":"x","age":1,"extra":1}')).toBeNull();
  });
});

describe.skipIf(!haveTokenizer)('token masks over the Llama 2 vocab', () => {
  it('spells every token as its bytes: the U+2581 space and byte-fallback pieces', () => {
    expect(tokenBytes(vocab, 15043)).toEqual(new TextEncoder().encode(' Hello'));
    expect(tokenBytes(vocab, 3 + 0xe2)).toEqual(Uint8Array.of(0xe2));
    expect(tokenBytes(vocab, vocab.bosId)).toBeNull();
  });

  it('masks exactly the tokens a brute-force check over every token allows', () => {
    const trie = new TokenTrie(vocab.pieces.map((_, id) => tokenBytes(vocab, id)));
    for (const name of ['person', 'nested', 'numbers']) {
      const states = reachable(initialState(compileJsonSchema(SCHEMAS[name])), 400).filter((_, i) => i % 50 === 0);
      for (const s of states) {
        for (const budget of [Infinity, s.cost + 2]) {
          const bits = new Uint32Array(1000);
          walkMask(trie, s, budget, bits);
          for (let id = 0; id < vocab.pieces.length; id++) {
            const t = tokenBytes(vocab, id);
            let n: JsonState | null = t ? s : null;
            for (const b of t ?? []) if (n) n = step(n, b);
            const want = !!n && n.cost <= budget;
            if (want !== !!(bits[id >>> 5] & (1 << (id & 31)))) throw new Error(`token ${id} ${JSON.stringify(vocab.pieces[id])} budget ${budget}: mask ${!want}, expected ${want}`);
          }
        }
      }
    }
  });

  it.each(Object.keys(SCHEMAS))('random token choices under the %s mask always end in valid, matching JSON', (name) => {
    for (let seed = 0; seed < 50; seed++) {
      // From no slack at all (every token must head for the shortest completion) to 60 spare tokens.
      const out = randomRun(vocab, SCHEMAS[name], seed, (seed % 5) * 15);
      expect(out.tokens).toBeLessThanOrEqual(out.maxTokens);
      expect(out.complete, out.text).toBe(true);
      const value = JSON.parse(out.text);
      expect(validateJson(value, SCHEMAS[name]), out.text).toBeNull();
    }
  });

  it('a schema longer than max_tokens allows no token at all', () => {
    const c = jsonConstraint(vocab, { type: 'array', minItems: 50, items: { type: 'boolean' } }, vocab.eosId);
    expect(c.minTokens).toBe(2 + 50 * 4 + 49);
  });
});
