// Structured output end to end: the random-weight tiny Llama 2 (full 32,000-piece vocab, gibberish logits) and
// stories260K, loaded by createEngine on both adapters, writing JSON under a schema through generate() and the
// chat API. Every output must parse and match its schema (test/reference/json-schema-validate.ts), whatever the
// weights, seed or max_tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine.ts';
import { InvalidOptionsError, JsonSchemaError } from '../../src/errors.ts';
import { compileJsonSchema } from '../../src/generate/json-schema.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { convertedPackage, packagesRoot, removePackagesRoot } from '../helpers/convert.ts';
import { RANDOM_GGUF } from '../helpers/fixtures.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';
import { validateJson } from '../reference/json-schema-validate.ts';
import { SCHEMAS } from '../helpers/json-schemas.ts';

const gpus = await testGpus();
afterAll(removePackagesRoot);
const have = haveSharedModel('random/llama-2-tiny-random.gguf') && haveSharedModel('stories260K/stories260K.bin');

async function collect(run: AsyncIterable<{ text: string }>): Promise<string> {
  let text = '';
  for await (const d of run) text += d.text;
  return text;
}

describe.skipIf(!have).each(gpus)('structured output on $name', ({ name, gpu }) => {
  const store = createFsStore(packagesRoot());
  let random: Engine;

  beforeAll(async () => {
    await convertedPackage('random-tiny-f16', RANDOM_GGUF, 'f16');
    random = await createEngine({ model: 'random-tiny-f16', store, gpu, contextLength: 512 });
  });
  afterAll(async () => random?.unload());

  it('50 seeds of the random-weight model: every output is complete JSON that matches its schema', async () => {
    const names = Object.keys(SCHEMAS);
    // SwiftShader runs the 32k-vocab sampler about 10x slower: 10 seeds there, 50 on lavapipe.
    for (let seed = 0; seed < (name === 'llvmpipe' ? 50 : 10); seed++) {
      const schemaName = names[seed % names.length];
      const schema = SCHEMAS[schemaName];
      // Greedy, plain sampling and top-k/top-p; max_tokens from exactly the shortest value's length to 24 more.
      const options = [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.8, topK: 40, topP: 0.9 }][seed % 3];
      const maxTokens = compileJsonSchema(schema).minLen + ((seed * 7) % 4) * 8;
      const run = random.generate('Reply in JSON:', { ...options, seed, maxTokens, jsonSchema: schema });
      const text = await collect(run);
      const stats = await run.result;
      const what = `seed ${seed} ${schemaName} on ${name}: ${JSON.stringify(text)}`;
      expect(stats.finishReason, what).toBe('stop');
      expect(stats.generatedTokens, what).toBeLessThanOrEqual(maxTokens);
      expect(validateJson(JSON.parse(text), schema), what).toBeNull();
    }
  }, 900_000);

  it('chat completions with response_format json_object and json_schema, streamed and not', async () => {
    const reply = await random.chat.completions.create({
      messages: [{ role: 'user', content: 'A person, as JSON.' }],
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema: SCHEMAS.person } },
      max_tokens: 60,
      seed: 3,
    });
    expect(reply.choices[0].finish_reason).toBe('stop');
    expect(validateJson(JSON.parse(reply.choices[0].message.content), SCHEMAS.person)).toBeNull();

    const stream = await random.chat.completions.create({ messages: [{ role: 'user', content: 'Any object.' }], response_format: { type: 'json_object' }, max_tokens: 50, seed: 4, stream: true });
    let content = '';
    let finish: string | null = null;
    for await (const c of stream) {
      content += c.choices[0].delta.content ?? '';
      finish = c.choices[0].finish_reason ?? finish;
    }
    expect(finish).toBe('stop');
    const value = JSON.parse(content);
    expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
  });

  it('a schema longer than max_tokens ends with finish reason "length", no output, and says why', async () => {
    const schema = { type: 'array', minItems: 30, items: { type: 'boolean' } };
    const run = random.generate('x', { jsonSchema: schema, maxTokens: 50 });
    expect(await collect(run)).toBe('');
    const stats = await run.result;
    expect(stats.finishReason).toBe('length');
    expect(stats.generatedTokens).toBe(0);
    expect(stats.warning).toMatch(/shortest value takes 151 tokens, more than the 50 allowed/);

    const reply = await random.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { schema } }, max_tokens: 20 });
    expect(reply.choices[0].finish_reason).toBe('length');
    expect(reply.choices[0].message.content).toBe('');
    expect(reply.usage.extra.warning).toMatch(/Raise max_tokens/);
  });

  it('refuses unsupported schemas, stop strings with a schema, and bad response formats by name', () => {
    expect(() => random.generate('x', { jsonSchema: { type: 'string', format: 'date' } })).toThrow(JsonSchemaError);
    expect(() => random.generate('x', { jsonSchema: { type: 'string' }, stop: '}' })).toThrow(InvalidOptionsError);
    const bad = (response_format: unknown) =>
      random.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], response_format: response_format as never });
    return Promise.all([
      expect(bad({ type: 'xml' })).rejects.toThrow(/response_format.type/),
      expect(bad({ type: 'json_schema', json_schema: {} })).rejects.toThrow(/response_format.json_schema/),
      expect(bad({ type: 'json_schema', json_schema: { schema: { oneOf: [] } } })).rejects.toMatchObject({ keyword: 'oneOf', path: '#' }),
    ]);
  });

  it('stories260K (512-piece vocab) writes a valid object, and plain generation after it is unconstrained', async () => {
    await convertedPackage('stories-json-f32', sharedModel('stories260K/stories260K.bin'), 'f32', sharedModel('stories260K/tok512.bin'));
    const e = await createEngine({ model: 'stories-json-f32', store, gpu });
    try {
      for (let seed = 0; seed < 5; seed++) {
        const run = e.generate('Once upon a time', { seed, temperature: 1, maxTokens: 80, jsonSchema: SCHEMAS.person });
        const text = await collect(run);
        expect((await run.result).finishReason).toBe('stop');
        expect(validateJson(JSON.parse(text), SCHEMAS.person), text).toBeNull();
      }
      const plain = await collect(e.generate([e.config.bosId], { temperature: 0, maxTokens: 20 }));
      expect(plain.startsWith('Once upon a time')).toBe(true);
    } finally {
      await e.unload();
    }
  });
});
