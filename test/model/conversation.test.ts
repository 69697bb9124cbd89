// Conversations on stories260K, on both adapters: a request reuses the KV cache of the longest prefix it shares with
// the tokens already there (the previous prompt and output) and prefills only the rest, with the same output as a
// cold run (greedy, and seeded sampling with penalties); chats that outgrow the context drop their oldest turns or
// fail with ContextOverflowError, as asked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine, type EngineStats } from '../../src/engine.ts';
import { ContextOverflowError, InvalidOptionsError } from '../../src/errors.ts';
import type { ChatMessage } from '../../src/generate/chat-template.ts';
import { startChatRun, type ChatCompletionRequest } from '../../src/generate/openai.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { convertedPackage, packagesRoot, removePackagesRoot } from '../helpers/convert.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';

const gpus = await testGpus();
afterAll(removePackagesRoot);
const have = haveSharedModel('stories260K/stories260K.bin');
const ID = 'stories-conversation-f32';

async function collect(run: AsyncIterable<{ text: string; tokenIds: number[] }> & { result: Promise<EngineStats> }) {
  let text = '';
  const ids: number[] = [];
  for await (const d of run) {
    text += d.text;
    ids.push(...d.tokenIds);
  }
  return { text, ids, stats: await run.result };
}

/** Runs `users` as a chat, each reply joining the history; returns every turn's reply ids, text and stats. */
async function converse(engine: Engine, users: string[], request: Omit<ChatCompletionRequest, 'messages'>, system?: string) {
  const history: ChatMessage[] = system ? [{ role: 'system', content: system }] : [];
  const turns = [];
  for (const content of users) {
    history.push({ role: 'user', content });
    const { run, droppedMessages } = startChatRun(engine.chat, { ...request, messages: history });
    const t = await collect(run);
    history.push({ role: 'assistant', content: t.text });
    turns.push({ ...t, droppedMessages });
  }
  return turns;
}

const USERS = ['Tell me about a cat.', 'What did the cat eat?', 'Where did it sleep?', 'Did it have a friend?', 'What was its name?', 'How did it end?'];

describe.skipIf(!have).each(gpus)('conversations on $name', ({ gpu }) => {
  const store = createFsStore(packagesRoot());
  let engine: Engine;

  beforeAll(async () => {
    await convertedPackage(ID, sharedModel('stories260K/stories260K.bin'), 'f32', sharedModel('stories260K/tok512.bin'));
    engine = await createEngine({ model: ID, store, gpu, prefillChunk: 16 });
  });
  afterAll(async () => engine?.unload());

  it('reuses the longest common prefix of token ids, and generates what a cold run does', async () => {
    const prompt = engine.encode('Once upon a time, there was a dog');
    const first = await collect(engine.generate(prompt, { temperature: 0, maxTokens: 20 }));
    expect(first.stats).toMatchObject({ promptTokens: prompt.length, cachedPromptTokens: 0, prefilledTokens: prompt.length });
    // The cache now holds the prompt and the 19 generated tokens that were fed back. Diverge after 10 of them.
    const diverged = first.ids[10] === 300 ? 301 : 300;
    const next = [...prompt, ...first.ids.slice(0, 10), diverged, 270, 280];
    const warm = await collect(engine.generate(next, { temperature: 0, maxTokens: 20 }));
    expect(warm.stats.cachedPromptTokens).toBe(prompt.length + 10);
    expect(warm.stats.prefilledTokens).toBe(3);
    const cold = await collect(engine.generate(next, { temperature: 0, maxTokens: 20, cache: false }));
    expect(cold.stats.cachedPromptTokens).toBe(0);
    expect(cold.stats.prefilledTokens).toBe(next.length);
    expect(warm.ids).toEqual(cold.ids);
    expect(warm.ids.length).toBeGreaterThan(0);
  });

  it('prefills only the last token of a prompt the cache holds whole, and a text prompt reuses its tokens too', async () => {
    const a = await collect(engine.generate('Once upon a time', { temperature: 0, maxTokens: 12 }));
    const b = await collect(engine.generate('Once upon a time', { temperature: 0, maxTokens: 12 }));
    expect(b.stats).toMatchObject({ cachedPromptTokens: a.stats.promptTokens - 1, prefilledTokens: 1 });
    expect(b.ids).toEqual(a.ids);
    expect(b.text).toBe(a.text);
    // The continuation's text extends the prompt: its tokens match up to where the tokenizer splits them alike.
    const longer = `Once upon a time${a.text}`;
    const c = await collect(engine.generate(longer, { temperature: 0, maxTokens: 12 }));
    const ids = engine.encode(longer);
    let common = 0;
    const held = [...engine.encode('Once upon a time'), ...a.ids.slice(0, -1)];
    while (common < Math.min(ids.length - 1, held.length) && ids[common] === held[common]) common++;
    expect(c.stats.cachedPromptTokens).toBe(common);
    expect(common).toBeGreaterThan(a.stats.promptTokens);
    const cold = await collect(engine.generate(longer, { temperature: 0, maxTokens: 12, cache: false }));
    expect(c.ids).toEqual(cold.ids);
  });

  it('after a stop string and an abort, the next request reuses only what the cache really holds', async () => {
    const prompt = engine.encode('Once upon a time');
    const stopped = await collect(engine.generate(prompt, { temperature: 0, maxTokens: 40, stop: 'Lily' }));
    expect(stopped.stats.finishReason).toBe('stop');
    const ac = new AbortController();
    const aborted = engine.generate(prompt, { temperature: 0, maxTokens: 200, signal: ac.signal });
    let n = 0;
    for await (const _ of aborted) if (++n === 3) ac.abort();
    expect((await aborted.result).finishReason).toBe('abort');
    const next = [...prompt, ...stopped.ids, 300, 271];
    const warm = await collect(engine.generate(next, { temperature: 0, maxTokens: 16 }));
    const cold = await collect(engine.generate(next, { temperature: 0, maxTokens: 16, cache: false }));
    expect(warm.stats.cachedPromptTokens).toBeGreaterThan(prompt.length);
    expect(warm.ids).toEqual(cold.ids);
  });

  it('a greedy chat gives the same replies with and without reuse; later turns prefill only their new tokens', async () => {
    const system = 'You tell short stories.';
    const warm = await converse(engine, USERS.slice(0, 4), { temperature: 0, max_tokens: 10 }, system);
    const cold = await converse(engine, USERS.slice(0, 4), { temperature: 0, max_tokens: 10, cache: false }, system);
    expect(warm.map((t) => t.ids)).toEqual(cold.map((t) => t.ids));
    expect(warm.map((t) => t.text)).toEqual(cold.map((t) => t.text));
    for (const [i, t] of warm.entries()) {
      expect(t.droppedMessages).toBe(0);
      expect(cold[i].stats.cachedPromptTokens).toBe(0);
      expect(t.stats.promptTokens).toBe(cold[i].stats.promptTokens);
      expect(t.stats.cachedPromptTokens + t.stats.prefilledTokens).toBe(t.stats.promptTokens);
      // Every turn after the first extends the previous prompt and reply: all of the previous prompt is reused.
      if (i > 0) expect(t.stats.cachedPromptTokens).toBeGreaterThanOrEqual(warm[i - 1].stats.promptTokens);
    }
    const last = warm[warm.length - 1].stats;
    expect(last.prefilledTokens).toBeLessThan(last.promptTokens / 4);
  }, 300_000);

  it('seeded sampling with penalties draws the same chat with and without reuse', async () => {
    const request = { temperature: 0.9, seed: 7, max_tokens: 8, repetition_penalty: 1.3, frequency_penalty: 0.5, top_p: 0.9 };
    const warm = await converse(engine, USERS.slice(0, 3), request);
    const cold = await converse(engine, USERS.slice(0, 3), { ...request, cache: false });
    expect(warm.map((t) => t.ids)).toEqual(cold.map((t) => t.ids));
    expect(warm[2].stats.cachedPromptTokens).toBeGreaterThan(0);
  }, 300_000);

  it('reports the reuse in chat usage, and the context fill in stats', async () => {
    const messages: ChatMessage[] = [{ role: 'user', content: 'Tell me a story.' }];
    await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8 });
    const again = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8 });
    const P = engine.encodeChat(messages).length;
    expect(again.usage.prompt_tokens_details).toEqual({ cached_tokens: P - 1 });
    expect(again.usage.extra).toMatchObject({ cached_prompt_tokens: P - 1, prefilled_tokens: 1, dropped_messages: 0 });
    expect(again.usage.extra.time_to_first_token_ms).toBeGreaterThan(0);
    const s = engine.stats();
    expect(s).toMatchObject({ contextLength: engine.model.contextLength, contextTokens: P + again.usage.completion_tokens });
  });

  it('refuses a cache or context_overflow option of the wrong kind, naming it', async () => {
    expect(() => engine.generate([1], { cache: 'yes' as unknown as boolean })).toThrow(InvalidOptionsError);
    const bad = engine.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], context_overflow: 'shift' as 'error' });
    await expect(bad).rejects.toThrow(/^context_overflow: must be "drop_oldest" or "error", got "shift"\.$/);
  });

  describe('in a 128-token context', () => {
    const CONTEXT = 128;
    let small: Engine;
    beforeAll(async () => {
      small = await createEngine({ model: ID, store, gpu, contextLength: CONTEXT });
    });
    afterAll(async () => small?.unload());

    it('drops the oldest turns, keeps the system and last user message, and keeps dropping them while that reuses the cache', async () => {
      const system = 'Be kind.';
      const turns = await converse(small, USERS, { temperature: 0, max_tokens: 8 }, system);
      const dropped = turns.filter((t) => t.droppedMessages > 0);
      expect(dropped.length).toBeGreaterThan(0);
      for (const t of turns) {
        expect(t.droppedMessages % 2).toBe(0);
        expect(t.stats.droppedMessages).toBe(t.droppedMessages);
        expect(t.stats.promptTokens + 8).toBeLessThanOrEqual(CONTEXT + 1);
      }
      // Turns are dropped down to half the context, and the next turn drops the same ones: it extends the cached
      // prompt and reply, and prefills only its own tokens.
      const i = turns.findIndex((t) => t.droppedMessages > 0);
      expect(turns[i].stats.promptTokens).toBeLessThanOrEqual(CONTEXT / 2);
      expect(turns[i + 1].droppedMessages).toBe(turns[i].droppedMessages);
      expect(turns[i + 1].stats.cachedPromptTokens).toBeGreaterThanOrEqual(turns[i].stats.promptTokens);
    }, 300_000);

    it('starts the prompt with the system message and the first kept turn', () => {
      const history: ChatMessage[] = [{ role: 'system', content: 'Be kind.' }];
      for (const u of USERS) history.push({ role: 'user', content: u }, { role: 'assistant', content: 'They played all day in the sun.' });
      history.push({ role: 'user', content: 'The end?' });
      const { promptIds, droppedMessages } = startChatRun(small.chat, { messages: history, max_tokens: 8 });
      expect(droppedMessages).toBeGreaterThan(0);
      expect(promptIds).toEqual(small.encodeChat([history[0], ...history.slice(1 + droppedMessages)]));
    });

    it("fails with ContextOverflowError under context_overflow: 'error'", async () => {
      const history: ChatMessage[] = [];
      for (const u of USERS) history.push({ role: 'user', content: u }, { role: 'assistant', content: 'They played all day in the sun.' });
      history.push({ role: 'user', content: 'The end?' });
      const req = { messages: history, max_tokens: 12, context_overflow: 'error' as const };
      await expect(small.chat.completions.create(req)).rejects.toBeInstanceOf(ContextOverflowError);
      await expect(small.chat.completions.create(req)).rejects.toMatchObject({ code: 'CONTEXT_OVERFLOW' });
    });

    it("a reply that reaches the end of the context finishes with 'length'", async () => {
      // A prompt that leaves about 12 tokens for the reply, which may not end with EOS.
      let content = 'Tell me a long story.';
      while (small.encodeChat([{ role: 'user', content: `${content} The cat sat.` }]).length < CONTEXT - 12) content += ' The cat sat.';
      const reply = await small.chat.completions.create({
        messages: [{ role: 'user', content }],
        temperature: 0,
        max_tokens: 500,
        logit_bias: { [small.config.eosId]: -1e9 },
      });
      expect(reply.choices[0].finish_reason).toBe('length');
      expect(reply.usage.prompt_tokens + reply.usage.completion_tokens).toBe(CONTEXT + 1);
      expect(small.stats().contextTokens).toBe(CONTEXT);
    });
  });
});
