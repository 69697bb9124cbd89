// Quantized packages against f32 on stories260K: perplexity of a held-out text (teacher-forced, src/model/score.ts as
// `llama-webgpu eval` runs it) and top-1 agreement of next-token predictions with f32 at the same positions.
// Bounds: q8 agrees on >= 95% of positions with perplexity within 2% of f32; q4, the default 4-bit mix
// (quant-plan.ts), on >= 87% within 6%; q4-pure (every matrix at q4) on >= 75% within 20%.
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine.ts';
import { perplexity, Scorer, top1Agreement, type TokenScores } from '../../src/model/score.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { convertedPackage, packagesRoot, removePackagesRoot } from '../helpers/convert.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';

// A short story written for this test (not from the training set): 139 tokens.
const HELD_OUT =
  'Tom had a small red boat. He liked to sail it on the pond near his house. One day, the wind was very strong ' +
  'and the boat went far away. Tom was sad. His friend Sue came and said, "Let\'s find your boat together!" They ' +
  'walked around the pond and found the boat under a big tree. Tom was happy and said thank you to Sue.';

const gpus = await testGpus();
afterAll(removePackagesRoot);
const have = haveSharedModel('stories260K/stories260K.bin');

describe.skipIf(!have).each(gpus)('quantized stories260K on $name', ({ name, gpu }) => {
  const store = createFsStore(packagesRoot());

  it('q8, the q4 mix and q4-pure agree with f32 and keep its perplexity', async () => {
    const scores: Record<string, TokenScores> = {};
    for (const quant of ['f32', 'q8', 'q4', 'q4-pure'] as const) {
      const id = `stories-bin-${quant}`;
      await convertedPackage(id, sharedModel('stories260K/stories260K.bin'), quant, sharedModel('stories260K/tok512.bin'));
      const engine = await createEngine({ model: id, store, gpu });
      const scorer = new Scorer(engine.model);
      try {
        const ids = engine.encode(HELD_OUT, false);
        expect(ids.length).toBe(139);
        scores[quant] = await scorer.score(ids);
      } finally {
        scorer.destroy();
        await engine.unload();
      }
    }
    const ppl = (q: string) => perplexity(scores[q].nll);
    const report = {
      adapter: name,
      positions: scores.f32.nll.length,
      perplexity: Object.fromEntries(Object.keys(scores).map((q) => [q, ppl(q)])),
      overF32: Object.fromEntries(['q8', 'q4', 'q4-pure'].map((q) => [q, ppl(q) / ppl('f32') - 1])),
      top1Agreement: Object.fromEntries(['q8', 'q4', 'q4-pure'].map((q) => [q, top1Agreement(scores[q].top1, scores.f32.top1)])),
    };
    console.log(`quantization quality on ${name}: ${JSON.stringify(report)}`);
    expect(report.top1Agreement.q8).toBeGreaterThanOrEqual(0.95);
    expect(Math.abs(report.overF32.q8)).toBeLessThanOrEqual(0.02);
    expect(report.top1Agreement.q4).toBeGreaterThanOrEqual(0.87);
    expect(Math.abs(report.overF32.q4)).toBeLessThanOrEqual(0.06);
    expect(report.top1Agreement['q4-pure']).toBeGreaterThanOrEqual(0.75);
    expect(Math.abs(report.overF32['q4-pure'])).toBeLessThanOrEqual(0.2);
  }, 600_000);
});
