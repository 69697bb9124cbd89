// Teacher-forced scoring (src/model/score.ts, what `llama-webgpu eval` runs) against a float64 reference forward
// pass on the package's own decoded weights: every position's -log p(next token) and most likely token, for the
// f32 package and the q4 mix (wq and wk joined, wv and w2 at q8 in some layers), in one window and in several
// windows of a short context whose prefill chunks end with a single token. Also: the batched scores equal the
// per-token decode path's, and what the q4 mix does to the fused decode (dispatches, joined weights).
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine.ts';
import { EngineUnloadedError, InvalidOptionsError } from '../../src/errors.ts';
import { Scorer, perplexity, top1Agreement } from '../../src/model/score.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { convertedPackage, packagesRoot, removePackagesRoot } from '../helpers/convert.ts';
import { ggufBytes, llamaGgufMetadata, TINY_CONFIG, tinyGgufTensors } from '../helpers/fixtures.ts';
import { randomArray } from '../helpers/random.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel, STORIES260K_GREEDY_IDS } from '../helpers/models.ts';
import { referenceScores } from '../reference/score.ts';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const gpus = await testGpus();
afterAll(removePackagesRoot);
const have = haveSharedModel('stories260K/stories260K.bin');
const BIN = sharedModel('stories260K/stories260K.bin');
const TOK = sharedModel('stories260K/tok512.bin');
const TEXT =
  'Once upon a time, there was a big dog named Max. Max liked to run in the park with his ball. One day, he saw a ' +
  'little bird on a tree. The bird was stuck and could not fly. Max barked and a girl came to help. She got the ' +
  'bird down and it flew away. Max was happy.';

/** Teacher-forced -log p(next) by one decode step per position (the generation path), read back each step. */
async function decodeScores(engine: Engine, ids: number[]): Promise<number[]> {
  const m = engine.model;
  const sink = m.gpu.storage('test.tokenSink', 16);
  const inputs = [m.config.bosId, ...ids.slice(0, -1)];
  const nll: number[] = [];
  for (let pos = 0; pos < inputs.length; pos++) {
    if (pos === 0) m.prefill([inputs[0]], 0, 0, sink);
    else {
      m.setNextToken(inputs[pos]);
      m.decode(pos, 0, sink);
    }
    const logits = await m.gpu.readF32(m.state.logits);
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    let sum = 0;
    for (const v of logits) sum += Math.exp(v - max);
    nll.push(Math.log(sum) + max - logits[ids[pos]]);
  }
  sink.destroy();
  return nll;
}

describe.skipIf(!have).each(gpus)('teacher-forced scoring on $name', ({ name, gpu }) => {
  const store = createFsStore(packagesRoot());
  // f16 KV caches (shader-f16) round keys and values to 11 bits.
  const tol = gpu.f16 ? 2e-2 : 2e-3;

  const open = async (quant: 'f32' | 'q4' | 'q4-pure', options: { contextLength?: number; prefillChunk?: number } = {}) => {
    const id = `stories-bin-${quant}`;
    await convertedPackage(id, BIN, quant, TOK);
    return { id, engine: await createEngine({ model: id, store, gpu, ...options }) };
  };

  it.each([
    ['f32', 'one window, chunks of 64', {}],
    ['q4', 'one window, chunks of 64', {}],
    ['q4', 'windows of 50 tokens, chunks of 16 ending with one token', { contextLength: 50, prefillChunk: 16 }],
  ] as const)('%s package, %s: every position matches the float64 reference', async (quant, _what, options) => {
    const { id, engine } = await open(quant, options);
    const scorer = new Scorer(engine.model);
    try {
      const ids = engine.encode(TEXT, false);
      expect(ids.length).toBeGreaterThan(100);
      const got = await scorer.score(ids);
      const want = referenceScores(path.join(packagesRoot(), id), ids, engine.model.contextLength);
      expect(got.nll.length).toBe(ids.length);
      let worst = 0;
      for (let i = 0; i < ids.length; i++) worst = Math.max(worst, Math.abs(got.nll[i] - want.nll[i]));
      console.log(`scores of ${quant} on ${name}: largest -log p difference from float64 ${worst.toExponential(2)}`);
      expect(worst, `largest -log p difference on ${name}`).toBeLessThanOrEqual(tol);
      expect(Math.abs(perplexity(got.nll) / perplexity(want.nll) - 1)).toBeLessThanOrEqual(tol);
      expect(top1Agreement(got.top1, want.top1)).toBeGreaterThanOrEqual(0.98);
    } finally {
      scorer.destroy();
      await engine.unload();
    }
  });

  it('batched scores equal the per-token decode path, and the q4 mix decodes with wq and wk joined beside wv', async () => {
    const mix = await open('q4');
    const pure = await open('q4-pure');
    const scorer = new Scorer(mix.engine.model);
    try {
      const ids = mix.engine.encode(TEXT, false);
      const batched = await scorer.score(ids);
      const decoded = await decodeScores(mix.engine, ids);
      for (let i = 0; i < ids.length; i++) expect(Math.abs(batched.nll[i] - decoded[i]), `position ${i}`).toBeLessThanOrEqual(tol);
      // Layers 0, 3 and 4 hold wv at q8 (quant-plan.ts): wq and wk join as wqk, wv stays apart, one more dispatch each.
      const tensors = mix.engine.model.tensors;
      for (const l of [0, 3, 4]) {
        expect(tensors.get(`layers.${l}.wqk`)?.dtype).toBe('q4');
        expect(tensors.get(`layers.${l}.wv`)?.dtype).toBe('q8');
        expect(tensors.has(`layers.${l}.wq`)).toBe(false);
      }
      for (const l of [1, 2]) expect(tensors.get(`layers.${l}.wqkv`)?.dtype).toBe('q4');
      expect(pure.engine.model.tensors.get('layers.0.wqkv')?.dtype).toBe('q4');
      expect(mix.engine.model.forward.dispatchesPerDecode).toBe(pure.engine.model.forward.dispatchesPerDecode + 3);
    } finally {
      scorer.destroy();
      await mix.engine.unload();
      await pure.engine.unload();
    }
  });

  it('a q4 mix with q6k (rows of 256: wv, w2 and the tied classifier) matches the float64 reference', async () => {
    // TINY_CONFIG widened to 256, one layer (a layer moreBitsLayer picks), every tensor F32 in a GGUF.
    const config = { ...TINY_CONFIG, dim: 256, hiddenDim: 512, maxSeqLen: 64 };
    const tensors = tinyGgufTensors().map((t, i) => {
      const shape = t.shape.map((d) => (d === 5 ? 5 : d === 64 ? 512 : 256));
      // Norm weights of 1, so the logits spread over several nats.
      const values = shape.length === 1 ? new Float32Array(shape[0]).fill(1) : randomArray(shape.reduce((a, b) => a * b, 1), 70 + i, 0.1);
      return { ...t, shape, data: new Uint8Array(values.buffer) };
    });
    const file = path.join(packagesRoot(), 'wide-256.gguf');
    writeFileSync(file, ggufBytes(llamaGgufMetadata(config), tensors));
    const id = 'wide-256-q4';
    await convertedPackage(id, file, 'q4');
    const engine = await createEngine({ model: id, store, gpu, prefillChunk: 8 });
    const scorer = new Scorer(engine.model);
    try {
      const t = engine.model.tensors;
      expect([t.get('layers.0.wqk')?.dtype, t.get('layers.0.wv')?.dtype, t.get('layers.0.w2')?.dtype, t.get('tokenEmbedding')?.dtype]).toEqual(['q4', 'q6k', 'q6k', 'q6k']);
      const ids = Array.from({ length: 30 }, (_, i) => (i * 7 + 3) % 5);
      const got = await scorer.score(ids);
      const want = referenceScores(path.join(packagesRoot(), id), ids, engine.model.contextLength);
      let worst = 0;
      for (let i = 0; i < ids.length; i++) worst = Math.max(worst, Math.abs(got.nll[i] - want.nll[i]));
      console.log(`scores of the q6k mix on ${name}: largest -log p difference from float64 ${worst.toExponential(2)}`);
      expect(worst).toBeLessThanOrEqual(tol);
      expect(Math.max(...want.nll) - Math.min(...want.nll)).toBeGreaterThan(1);
    } finally {
      scorer.destroy();
      await engine.unload();
    }
  });

  it('engine.score: the Scorer\'s figures through the request queue, never between a generate\'s steps', async () => {
    const { engine } = await open('f32', { prefillChunk: 16 });
    const greedy = async () => {
      const ids: number[] = [];
      for await (const d of engine.generate([engine.config.bosId], { temperature: 0, maxTokens: 40 })) ids.push(...d.tokenIds);
      return ids;
    };
    try {
      const scorer = new Scorer(engine.model);
      const want = await scorer.score(engine.encode(TEXT, false));
      scorer.destroy();
      // A generate queued first runs whole before the score, and one queued after it still decodes llama2.c's text.
      const progress: number[] = [];
      const [before, got, after] = await Promise.all([greedy(), engine.score(TEXT, { onProgress: (p) => progress.push(p.done) }), greedy()]);
      expect(before.slice(0, STORIES260K_GREEDY_IDS.length)).toEqual(STORIES260K_GREEDY_IDS);
      expect(after).toEqual(before);
      expect(got.tokenIds).toEqual(engine.encode(TEXT, false));
      expect(got.tokens).toBe(got.tokenIds.length);
      expect(got.tokenNll).toEqual([...want.nll]);
      expect(got.top1).toEqual([...want.top1]);
      expect(got.perplexity).toBe(perplexity(want.nll));
      expect(got.nll).toBeCloseTo(Math.log(got.perplexity), 12);
      console.log(`engine.score on ${name}: perplexity ${got.perplexity.toFixed(4)} over ${got.tokens} tokens`);
      expect(progress.at(-1)).toBe(got.tokens);
      expect(progress.length).toBe(Math.ceil((got.tokens) / 16));
      // The score overwrote the KV cache: the next prompt is prefilled whole.
      await engine.score('The cat sat.');
      expect(engine.model.cachedIds).toEqual([]);
      const run = engine.generate('Once upon a time', { maxTokens: 1, cache: true });
      for await (const _ of run) void _;
      expect((await run.result).cachedPromptTokens).toBe(0);

      const aborted = new AbortController();
      aborted.abort();
      await expect(engine.score(TEXT, { signal: aborted.signal })).rejects.toMatchObject({ name: 'AbortError' });
      await expect(engine.score('')).rejects.toThrow(InvalidOptionsError);
      await expect(engine.score(5 as unknown as string)).rejects.toThrow(/^text: must be a string, got 5/);
      await expect(engine.score(TEXT, { onProgress: 1 as unknown as () => void })).rejects.toThrow(/^onProgress: must be a function/);
    } finally {
      await engine.unload();
    }
    await expect(engine.score(TEXT)).rejects.toThrow(EngineUnloadedError);
  });

  it('refuses an empty text and ids outside the vocabulary; leaves no cached prompt behind', async () => {
    const { engine } = await open('f32');
    const scorer = new Scorer(engine.model);
    try {
      for await (const _ of engine.generate('Once upon a time', { maxTokens: 2, temperature: 0 })) void _;
      expect(engine.model.cachedIds.length).toBeGreaterThan(0);
      await scorer.score(engine.encode('The cat sat.', false));
      expect(engine.model.cachedIds).toEqual([]);
      await expect(scorer.score([])).rejects.toThrow(InvalidOptionsError);
      await expect(scorer.score([5, 512])).rejects.toThrow(/token 1 is 512, outside the vocabulary of 512/);
    } finally {
      scorer.destroy();
      await engine.unload();
    }
  });
});
