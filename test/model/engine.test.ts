// End to end: sample checkpoints converted to packages, loaded by createEngine, decoded on real WebGPU adapters.
//
// Tolerances for logits against the float64 reference forward pass (test/reference/forward.ts):
//   f32 KV cache (SwiftShader): |gpu - ref| <= 2e-3 + 1e-3 |ref|  (f32 accumulation through 5 layers)
//   f16 KV cache (lavapipe):    |gpu - ref| <= 3e-2 + 1e-2 |ref|  (K and V rounded to half precision)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine.ts';
import { ContextOverflowError, EngineUnloadedError, InvalidOptionsError, TokenizerDisposedError } from '../../src/errors.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { argmax, ReferenceModel } from '../reference/forward.ts';
import { loadLlama2cForReference } from '../reference/llama2c.ts';
import { convertedPackage, packagesRoot, removePackagesRoot } from '../helpers/convert.ts';
import { expectClose, testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel, STORIES260K_GREEDY_IDS, STORIES260K_GREEDY_TEXT } from '../helpers/models.ts';

const gpus = await testGpus();
afterAll(removePackagesRoot);
const have = haveSharedModel('stories260K/stories260K.bin') && haveSharedModel('stories260K/stories260Ktok512.gguf');
const BIN = sharedModel('stories260K/stories260K.bin');
const TOK = sharedModel('stories260K/tok512.bin');
const GGUF = sharedModel('stories260K/stories260Ktok512.gguf');

async function collect(it: AsyncIterable<{ text: string; tokenIds: number[] }>): Promise<{ text: string; ids: number[] }> {
  let text = '';
  const ids: number[] = [];
  for await (const d of it) {
    text += d.text;
    ids.push(...d.tokenIds);
  }
  return { text, ids };
}

describe.skipIf(!have).each(gpus)('engine on $name', ({ name, gpu }) => {
  const store = createFsStore(packagesRoot());
  let engine: Engine;
  const tol = gpu.f16 ? { atol: 3e-2, rtol: 1e-2 } : { atol: 2e-3, rtol: 1e-3 };

  beforeAll(async () => {
    await convertedPackage('stories-bin-f32', BIN, 'f32', TOK);
    engine = await createEngine({ model: 'stories-bin-f32', store, gpu, prefillChunk: 5 });
  });
  afterAll(async () => engine?.unload());

  it.each([
    ['llama2.c', 'stories-bin-f32', BIN, TOK],
    ['GGUF', 'stories-gguf-f32', GGUF, undefined],
  ])('stories260K from its %s form at f32 reproduces llama2.c greedy text from BOS', async (_form, id, input, tok) => {
    await convertedPackage(id, input, 'f32', tok);
    const e = id === 'stories-bin-f32' ? engine : await createEngine({ model: id, store, gpu });
    try {
      const { text, ids } = await collect(e.generate([e.config.bosId], { temperature: 0, maxTokens: 40 }));
      expect(ids.slice(0, STORIES260K_GREEDY_IDS.length)).toEqual(STORIES260K_GREEDY_IDS);
      expect(text.startsWith(STORIES260K_GREEDY_TEXT)).toBe(true);
    } finally {
      if (e !== engine) await e.unload();
    }
  });

  it('decode logits match the float64 reference at positions 0..11', async () => {
    const { config, weights } = loadLlama2cForReference(BIN);
    const ref = new ReferenceModel(config, weights, 16);
    const m = engine.model;
    m.sampler.setParams({ temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 0 });
    m.sampler.setLogitBias(null);
    m.sampler.resetCounts();
    const sink = gpu.storage('test.tokenSink', 16);
    let token = config.bosId;
    for (let pos = 0; pos < 12; pos++) {
      if (pos === 0) m.prefill([token], 0, 0, sink);
      else {
        m.setNextToken(token);
        m.decode(pos, 0, sink);
      }
      const got = await gpu.readF32(m.state.logits);
      const want = ref.forward(token, pos);
      expectClose(got, want, tol.atol, tol.rtol, `logits at position ${pos} on ${name}`);
      token = argmax(want);
    }
    sink.destroy();
  });

  it('chunked prefill (matrix-matrix path) gives the reference logits of the last prompt token', async () => {
    const { config, weights } = loadLlama2cForReference(BIN);
    const ref = new ReferenceModel(config, weights, 32);
    const prompt = [config.bosId, ...STORIES260K_GREEDY_IDS, 261, 376, 298, 315, 421]; // 13 tokens: chunks of 5, 5, 3
    let want!: Float64Array;
    prompt.forEach((t, pos) => (want = ref.forward(t, pos)));
    const sink = gpu.storage('test.tokenSink', 16);
    engine.model.prefill(prompt, 0, 0, sink);
    expectClose(await gpu.readF32(engine.model.state.logits), want, tol.atol, tol.rtol, `prefill logits on ${name}`);
    sink.destroy();
  });

  it('samples reproducibly: same seed same text, another seed another text', async () => {
    const opts = { temperature: 1, topP: 0.95, maxTokens: 24 };
    const a = await collect(engine.generate('Once upon a time', { ...opts, seed: 7 }));
    const b = await collect(engine.generate('Once upon a time', { ...opts, seed: 7 }));
    const c = await collect(engine.generate('Once upon a time', { ...opts, seed: 8 }));
    expect(a.ids).toEqual(b.ids);
    expect(a.ids.length).toBeGreaterThan(0);
    expect(c.ids).not.toEqual(a.ids);
  });

  it('refuses a prompt longer than the context with ContextOverflowError, then still works', async () => {
    const long = Array.from({ length: engine.model.contextLength + 1 }, (_, i) => (i === 0 ? 1 : 300));
    await expect(collect(engine.generate(long, { maxTokens: 1 }))).rejects.toBeInstanceOf(ContextOverflowError);
    const { ids } = await collect(engine.generate([1], { temperature: 0, maxTokens: 3 }));
    expect(ids).toEqual(STORIES260K_GREEDY_IDS.slice(0, 3));
  });

  it('stops at the context end with finish reason "length"', async () => {
    const small = await createEngine({ model: 'stories-bin-f32', store, gpu, contextLength: 16 });
    try {
      const run = small.generate([1], { temperature: 0, maxTokens: 100 });
      const { ids } = await collect(run);
      expect(ids.length).toBe(16);
      expect((await run.result).finishReason).toBe('length');
    } finally {
      await small.unload();
    }
  });

  it('unload frees the tokenizer too: the engine then refuses to encode, and its tokenizer is disposed', async () => {
    const other = await createEngine({ model: 'stories-bin-f32', store, gpu, contextLength: 16 });
    expect(other.encode('Once upon a time')).toEqual(engine.encode('Once upon a time'));
    await other.unload();
    expect(() => other.encode('Once')).toThrow(EngineUnloadedError);
    expect(() => other.encodeChat([{ role: 'user', content: 'Hi' }])).toThrow(EngineUnloadedError);
    expect(() => other.tokenizer.encode('Once')).toThrow(TokenizerDisposedError);
    for (const call of [other.tokenize('Once'), other.detokenize([1]), other.tokenizeChat([{ role: 'user', content: 'Hi' }]), other.score('Once')]) {
      await expect(call).rejects.toThrow(EngineUnloadedError);
    }
  });

  it('tokenize, detokenize and tokenizeChat: the ids generate and chat prompt with, and text back', async () => {
    const text = 'Once upon a time, Lily saw a big dog. "Hi!" she said. Café 🐶';
    const ids = await engine.tokenize(text);
    expect(ids).toEqual(engine.encode(text));
    expect(ids[0]).toBe(engine.config.bosId);
    expect(await engine.tokenize(text, { addBos: false })).toEqual(ids.slice(1));
    expect(await engine.detokenize(ids)).toBe(text);
    expect(await engine.detokenize(ids.slice(1))).toBe(text);
    expect(await engine.detokenize([])).toBe('');
    const messages = [{ role: 'user' as const, content: 'Tell a story.' }];
    const chatIds = await engine.tokenizeChat(messages);
    expect(chatIds).toEqual(engine.encodeChat(messages));
    const reply = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 2 });
    expect(reply.usage.prompt_tokens).toBe(chatIds.length);
    // A text prompt generates from the ids tokenize() gives.
    const run = engine.generate(text, { maxTokens: 1 });
    for await (const _ of run) void _;
    expect((await run.result).promptTokens).toBe(ids.length);

    await expect(engine.tokenize(5 as unknown as string)).rejects.toThrow(/^text: must be a string, got 5/);
    await expect(engine.tokenize('x', { addBos: 'yes' as unknown as boolean })).rejects.toThrow(/^addBos: must be true or false/);
    await expect(engine.detokenize([1, 512])).rejects.toThrow(/^ids\[1\]: must be a token id, an integer in 0\.\.511, got 512/);
    await expect(engine.detokenize('1' as unknown as number[])).rejects.toThrow(InvalidOptionsError);
    await expect(engine.tokenizeChat([{ role: 'bot' as 'user', content: 'x' }])).rejects.toThrow(/^messages\[0\]\.role:/);
  });

  it('queues a second request behind the first and runs both in order', async () => {
    const order: string[] = [];
    const first = collect(engine.generate([1], { temperature: 0, maxTokens: 10 })).then((r) => (order.push('first'), r));
    const second = collect(engine.generate([1], { temperature: 0, maxTokens: 5 })).then((r) => (order.push('second'), r));
    const [a, b] = await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
    expect(a.ids.slice(0, 5)).toEqual(b.ids);
  });

  it('aborts in the middle of a generation, and the engine still works afterwards', async () => {
    const ac = new AbortController();
    const run = engine.generate([1], { temperature: 0, maxTokens: 200, signal: ac.signal });
    let n = 0;
    for await (const d of run) {
      n += d.tokenIds.length;
      if (n >= 5) ac.abort();
    }
    expect((await run.result).finishReason).toBe('abort');
    expect(n).toBeLessThan(200);
    const { ids } = await collect(engine.generate([1], { temperature: 0, maxTokens: 7 }));
    expect(ids).toEqual(STORIES260K_GREEDY_IDS);
  });

  it('keeps the space that joins a continuation to its prompt text', async () => {
    const { text } = await collect(engine.generate('Once', { temperature: 0, maxTokens: 3 }));
    expect(text).toBe(' upon a time');
  });

  it('ends before a stop string and honours stop token ids', async () => {
    const r = engine.generate([1], { temperature: 0, maxTokens: 40, stop: ['Lily'] });
    const { text } = await collect(r);
    expect(text).toBe('Once upon a time, there was a little girl named ');
    expect((await r.result).finishReason).toBe('stop');
    const { ids } = await collect(engine.generate([1], { temperature: 0, maxTokens: 40, stopTokenIds: [378] }));
    expect(ids).toEqual(STORIES260K_GREEDY_IDS.slice(0, 3));
  });

  it('counts the tokens of a reply that a stop string ended, and takes one stop string as a whole', async () => {
    // Tokens of the unstopped greedy text up to the one that completes "Lily".
    let upTo = '';
    let tokens = 0;
    for await (const d of engine.generate([1], { temperature: 0, maxTokens: 40 })) {
      if (upTo.includes('Lily')) break;
      upTo += d.text;
      tokens += d.tokenIds.length;
    }
    expect(upTo).toContain('Lily');
    const r = engine.generate([1], { temperature: 0, maxTokens: 40, stop: 'Lily' });
    const { text } = await collect(r);
    expect(text).toBe('Once upon a time, there was a little girl named ');
    const stats = await r.result;
    expect(stats.finishReason).toBe('stop');
    expect(stats.generatedTokens).toBe(tokens);
    expect(stats.decodeTokensPerSecond).toBeGreaterThan(0);
    expect(engine.stats().generatedTokens).toBe(tokens);

    const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];
    const whole = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 20 });
    const words = whole.choices[0].message.content.trim().split(/\s+/);
    expect(words.length).toBeGreaterThan(2);
    const stopped = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 20, stop: words[2] });
    expect(stopped.choices[0].finish_reason).toBe('stop');
    expect(whole.choices[0].message.content.startsWith(stopped.choices[0].message.content)).toBe(true);
    expect(stopped.choices[0].message.content).not.toContain(words[2]);
    expect(stopped.usage.completion_tokens).toBeGreaterThan(0);
    expect(stopped.usage.completion_tokens).toBeLessThan(whole.usage.completion_tokens);
    expect(stopped.usage.completion_tokens).toBe(engine.stats().generatedTokens);
    expect(stopped.usage.extra.decode_tokens_per_s).toBeGreaterThan(0);
  });

  it('runs later requests while a created stream is never iterated, and starts that stream when it is', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];
    const [stream, whole] = await Promise.all([
      engine.chat.completions.create({ messages, temperature: 0, max_tokens: 6, stream: true }),
      engine.chat.completions.create({ messages, temperature: 0, max_tokens: 6 }),
    ]);
    const idle = engine.generate([1], { temperature: 0, maxTokens: 7 });
    expect((await collect(engine.generate([1], { temperature: 0, maxTokens: 7 }))).ids).toEqual(STORIES260K_GREEDY_IDS);
    expect((await collect(idle)).ids).toEqual(STORIES260K_GREEDY_IDS);
    expect((await idle.result).generatedTokens).toBe(7);
    let content = '';
    for await (const c of stream) content += c.choices[0].delta.content ?? '';
    expect(content).toBe(whole.choices[0].message.content);
  });

  it('cancels a request whose iteration is left early, settling its result with "abort"', async () => {
    const run = engine.generate([1], { temperature: 0, maxTokens: 200 });
    let n = 0;
    for await (const d of run) {
      n += d.tokenIds.length;
      if (n >= 3) break;
    }
    const stats = await run.result;
    expect(stats.finishReason).toBe('abort');
    expect(stats.generatedTokens).toBeGreaterThanOrEqual(3);
    expect(stats.generatedTokens).toBeLessThan(200);

    const never = engine.generate([1], { temperature: 0, maxTokens: 200 });
    await never[Symbol.asyncIterator]().return?.();
    expect(await never.result).toMatchObject({ finishReason: 'abort', generatedTokens: 0 });

    const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];
    const chunks = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 100, stream: true });
    for await (const c of chunks) if (c.choices[0].delta.content) break;
    expect(engine.stats().finishReason).toBe('abort');
    expect((await collect(engine.generate([1], { temperature: 0, maxTokens: 7 }))).ids).toEqual(STORIES260K_GREEDY_IDS);
  });

  it('refuses malformed options and requests with InvalidOptionsError naming the option', async () => {
    const bad = async (option: RegExp, call: () => unknown) => {
      let err: unknown;
      try {
        const r = await call();
        if (r && typeof r === 'object' && Symbol.asyncIterator in r) for await (const _ of r as AsyncIterable<unknown>);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidOptionsError);
      expect((err as Error).message).toMatch(option);
      expect((err as Error).message).toMatch(/must be/);
    };
    const V = engine.config.vocabSize;
    for (const contextLength of [NaN, 0, -1, 2.5]) await bad(/^contextLength/, () => createEngine({ model: 'stories-bin-f32', store, gpu, contextLength }));
    await bad(/^prefillChunk/, () => createEngine({ model: 'stories-bin-f32', store, gpu, prefillChunk: NaN }));
    await bad(/^store/, () => createEngine({ model: 'stories-bin-f32' } as never));
    await bad(/^prompt/, () => engine.generate(5 as never));
    await bad(/^prompt/, () => engine.generate(undefined as never));
    await bad(/^prompt\[1\]/, () => engine.generate([1, V]));
    for (const maxTokens of [-1, NaN, -Infinity, 1.5]) await bad(/^maxTokens/, () => engine.generate([1], { maxTokens }));
    await bad(/^seed/, () => engine.generate([1], { seed: NaN }));
    await bad(/^stopTokenIds\[0\]/, () => engine.generate([1], { stopTokenIds: [1.5] }));
    await bad(/^stopTokenIds\[1\]/, () => engine.generate([1], { stopTokenIds: [2, V] }));
    await bad(/^stop\[0\]/, () => engine.generate([1], { stop: [null as never] }));
    await bad(/^temperature/, () => engine.generate([1], { temperature: -1 }));
    const user = (content: unknown) => [{ role: 'user', content }] as never;
    await bad(/^messages\[0\]\.content/, () => engine.chat.completions.create({ messages: user(5) }));
    await bad(/^messages\[0\]\.content/, () => engine.chat.completions.create({ messages: user(null) }));
    await bad(/^messages\[0\]\.content\[0\]/, () => engine.chat.completions.create({ messages: user([{ type: 'image_url', image_url: { url: 'x' } }]) }));
    await bad(/^messages/, () => engine.chat.completions.create({} as never));
    await bad(/^stop\[0\]/, () => engine.chat.completions.create({ messages: user('Hi'), stop: [null as never] }));
    await bad(/^max_tokens/, () => engine.chat.completions.create({ messages: user('Hi'), max_tokens: -1, stream: true }));
    await bad(/^logit_bias key/, () => engine.chat.completions.create({ messages: user('Hi'), logit_bias: { x: 1 } }));
    // Nothing was left queued or half-run: the engine still answers.
    expect((await collect(engine.generate([1], { temperature: 0, maxTokens: 7 }))).ids).toEqual(STORIES260K_GREEDY_IDS);
  });

  it('reads the text parts of an OpenAI content array, joined', async () => {
    const asText = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Tell me a story.' }], temperature: 0, max_tokens: 8 });
    const asParts = await engine.chat.completions.create({
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Tell me ' }, { type: 'text', text: 'a story.' }] }],
      temperature: 0,
      max_tokens: 8,
    });
    expect(asParts.usage.prompt_tokens).toBe(asText.usage.prompt_tokens);
    expect(asParts.choices[0].message.content).toBe(asText.choices[0].message.content);
  });

  it('answers chat.completions.create in OpenAI shape, streamed and whole, with usage', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];
    const whole = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8 });
    expect(whole.object).toBe('chat.completion');
    expect(whole.choices[0].message.role).toBe('assistant');
    expect(whole.usage.completion_tokens).toBeGreaterThan(0);
    expect(whole.usage.prompt_tokens).toBe(engine.encodeChat(messages).length);
    const chunks = [];
    for await (const c of await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8, stream: true })) chunks.push(c);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const last = chunks[chunks.length - 1];
    expect(last.choices[0].finish_reason).not.toBeNull();
    expect(last.usage?.total_tokens).toBe(whole.usage.total_tokens);
    expect(chunks.map((c) => c.choices[0].delta.content ?? '').join('')).toBe(whole.choices[0].message.content);
  });
});
