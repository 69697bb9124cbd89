// Quantized packages against f32 on stories260K: top-1 agreement of next-token predictions along a held-out
// text (teacher-forced), and the text's perplexity under each. Bounds: q8 agrees on >= 95% of positions with
// perplexity within 2% of f32; q4 agrees on >= 75% with perplexity within 20%.
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { argmax } from '../reference/forward.ts';
import { convertedPackage, packagesRoot, removePackagesRoot } from '../helpers/convert.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';

// A short story written for this test (not from the training set).
const HELD_OUT =
  'Tom had a small red boat. He liked to sail it on the pond near his house. One day, the wind was very strong ' +
  'and the boat went far away. Tom was sad. His friend Sue came and said, "Let\'s find your boat together!" They ' +
  'walked around the pond and found the boat under a big tree. Tom was happy and said thank you to Sue.';

const gpus = await testGpus();
afterAll(removePackagesRoot);
const have = haveSharedModel('stories260K/stories260K.bin');

/** Teacher-forced next-token logits over `ids` (one decode step per position). */
async function logitsAlong(engine: Engine, ids: number[]): Promise<Float32Array[]> {
  const m = engine.model;
  const { gpu } = m;
  m.sampler.setParams({ temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 0 });
  m.sampler.setLogitBias(null);
  m.sampler.resetCounts();
  const sink = gpu.storage('test.tokenSink', 16);
  const out: Float32Array[] = [];
  for (let pos = 0; pos < ids.length; pos++) {
    if (pos === 0) m.prefill([ids[0]], 0, 0, sink);
    else {
      m.setNextToken(ids[pos]);
      m.decode(pos, 0, sink);
    }
    out.push(await gpu.readF32(m.state.logits));
  }
  sink.destroy();
  return out;
}

function nll(logits: Float32Array, target: number): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return Math.log(sum) + max - logits[target];
}

describe.skipIf(!have).each(gpus)('quantized stories260K on $name', ({ name, gpu }) => {
  const store = createFsStore(packagesRoot());
  const engines: Engine[] = [];
  afterAll(async () => Promise.all(engines.map((e) => e.unload())));

  it('q8 and q4 agree with f32 and keep its perplexity', async () => {
    const results: Record<string, { logits: Float32Array[]; ppl: number }> = {};
    let ids: number[] = [];
    for (const quant of ['f32', 'q8', 'q4'] as const) {
      const id = `stories-bin-${quant}`;
      await convertedPackage(id, sharedModel('stories260K/stories260K.bin'), quant, sharedModel('stories260K/tok512.bin'));
      const engine = await createEngine({ model: id, store, gpu });
      engines.push(engine);
      ids = engine.encode(HELD_OUT);
      const logits = await logitsAlong(engine, ids.slice(0, -1));
      let total = 0;
      for (let i = 0; i < logits.length; i++) total += nll(logits[i], ids[i + 1]);
      results[quant] = { logits, ppl: Math.exp(total / logits.length) };
    }
    const agree = (q: string) => {
      const a = results[q].logits;
      let same = 0;
      for (let i = 0; i < a.length; i++) if (argmax(a[i]) === argmax(results.f32.logits[i])) same++;
      return same / a.length;
    };
    const report = {
      adapter: name,
      positions: results.f32.logits.length,
      perplexity: { f32: results.f32.ppl, q8: results.q8.ppl, q4: results.q4.ppl },
      top1Agreement: { q8: agree('q8'), q4: agree('q4') },
    };
    console.log(`quantization quality on ${name}: ${JSON.stringify(report)}`);
    expect(report.top1Agreement.q8).toBeGreaterThanOrEqual(0.95);
    expect(report.top1Agreement.q4).toBeGreaterThanOrEqual(0.75);
    expect(Math.abs(results.q8.ppl / results.f32.ppl - 1)).toBeLessThanOrEqual(0.02);
    expect(Math.abs(results.q4.ppl / results.f32.ppl - 1)).toBeLessThanOrEqual(0.2);
  });
});
