// GPU sampler (shaders/sample.wgsl) against the float64 reference (src/reference/sampling.ts).
// - Greedy (temperature 0): the chosen id equals the reference argmax exactly (ties to the lowest id), with logit
//   bias and penalties applied; the chosen token's count goes up by one on the GPU.
// - Temperature, top-k, top-p, min-p, penalties: over N draws with seeds 0..N-1, every draw lies in the reference's
//   kept set, and each token's empirical frequency f satisfies |f - p| <= 5 sqrt(p (1 - p) / N) + 1/N for its
//   reference probability p (a 5-sigma binomial bound; tokens with N p < 5 are pooled into one outcome).
//   Filter thresholds are placed midway between adjacent values, so f32 rounding cannot move a token across them.
// - Reproducibility: the same seed, parameters and logits give the same token.
import { describe, expect, it } from 'vitest';
import { KernelShapeError, SamplingParamsError } from '../../src/errors.ts';
import type { Gpu } from '../../src/gpu/device.ts';
import { GREEDY, Sampler, type SamplingParams } from '../../src/gpu/ops/sampler.ts';
import { StepUniform } from '../../src/gpu/ops/step.ts';
import { adjustedLogitsRef, argmaxRef, samplingProbsRef } from '../../src/reference/sampling.ts';
import { randomArray, rng, testGpus } from '../helpers/gpu.ts';

const gpus = await testGpus();

/** Runs one sampler dispatch per seed (one submit each, optionally resetting the counts first); returns the ids. */
async function draws(gpu: Gpu, sampler: Sampler, logits: GPUBuffer, seeds: number[], resetTo?: number[]): Promise<Uint32Array> {
  const tokens = gpu.storage('test.tokens', 16);
  const results = gpu.storage('test.results', seeds.length * 4);
  const step = new StepUniform(gpu, 'sampler.test.step');
  const bound = sampler.bind('sampler.test', logits, tokens, 0, step.buffer);
  for (let s = 0; s < seeds.length; s++) {
    if (resetTo) sampler.resetCounts(resetTo);
    step.write(0, 1, seeds[s]);
    const encoder = gpu.device.createCommandEncoder({ label: 'sampler.test' });
    const pass = encoder.beginComputePass({ label: 'sampler.test' });
    bound.encode(pass);
    pass.end();
    encoder.copyBufferToBuffer(tokens, 0, results, s * 4, 4);
    gpu.device.queue.submit([encoder.finish()]);
  }
  const ids = new Uint32Array(await gpu.read(results));
  for (const b of [tokens, results, step.buffer]) b.destroy();
  return ids;
}

function expectDistribution(ids: Uint32Array, probs: Float64Array, what: string): void {
  const n = ids.length;
  const seen = new Map<number, number>();
  for (const id of ids) {
    if (!(probs[id] > 0)) throw new Error(`${what}: drew token ${id}, which the reference excludes`);
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  // Tokens expected fewer than 5 times are checked together as one outcome (the normal bound needs n p >= 5).
  const outcomes: { label: string; p: number; count: number }[] = [];
  const rare = { label: 'the rare tokens', p: 0, count: 0 };
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    const count = seen.get(i) ?? 0;
    if (n * probs[i] >= 5) outcomes.push({ label: `token ${i}`, p: probs[i], count });
    else {
      rare.p += probs[i];
      rare.count += count;
    }
  }
  if (rare.p > 0) outcomes.push(rare);
  for (const o of outcomes) {
    const f = o.count / n;
    const bound = 5 * Math.sqrt((o.p * (1 - o.p)) / n) + 1 / n;
    if (Math.abs(f - o.p) > bound) {
      throw new Error(`${what}: ${o.label} drawn with frequency ${f}, reference probability ${o.p} (bound ${bound}, ${n} draws)`);
    }
  }
  expect(outcomes.length).toBeGreaterThan(0);
}

/** Descending probabilities of the reference distribution under `p` with the listed filters off. */
function sortedProbs(z: Float64Array, p: SamplingParams): number[] {
  return [...samplingProbsRef(z, p)].filter((x) => x > 0).sort((a, b) => b - a);
}

const seeds = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe.each(gpus)('sampler on $name', ({ name, gpu }) => {
  const slow = name !== 'llvmpipe';

  it.each([512, 32000])('greedy argmax, ties to the lowest id, bias, counts (vocab %i)', async (vocab) => {
    const logits = randomArray(vocab, vocab, 8);
    const sampler = new Sampler(gpu, vocab);
    sampler.resetCounts();
    const lb = gpu.storage('logits', logits);
    const want = argmaxRef(logits);
    expect([...(await draws(gpu, sampler, lb, [1, 2]))]).toEqual([want, want]);

    // Tie between two ids above every other logit: the lower id wins whatever order the threads meet them.
    const tied = logits.slice();
    tied[vocab - 3] = 20;
    tied[259] = 20;
    gpu.write(lb, tied);
    expect((await draws(gpu, sampler, lb, [3]))[0]).toBe(259);

    // A bias moves the argmax; the bias is applied before the comparison.
    sampler.setLogitBias(new Map([[17, 50], [259, -Infinity]]));
    expect((await draws(gpu, sampler, lb, [4]))[0]).toBe(17);
    sampler.setLogitBias(null);
    expect((await draws(gpu, sampler, lb, [5]))[0]).toBe(259);

    // Counts: 2 draws of `want`, then 1 of 259, 1 of 17, 1 of 259.
    const counts = new Uint32Array(await gpu.read(sampler.counts));
    expect([counts[want], counts[259], counts[17]]).toEqual([2, 2, 1]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(5);
  });

  it('greedy with repetition, frequency and presence penalties matches the reference argmax', async () => {
    const vocab = 512;
    const r = rng(7);
    for (let trial = 0; trial < 6; trial++) {
      const logits = randomArray(vocab, 100 + trial, 4);
      // Prompt ids favouring the top tokens, so the penalties change the winner.
      const byValue = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => logits[b] - logits[a]);
      const prompt = Array.from({ length: 40 }, () => byValue[Math.floor(r() * r() * 12)]);
      const counts = new Uint32Array(vocab);
      for (const id of prompt) counts[id]++;
      const p: SamplingParams = { ...GREEDY, repetitionPenalty: 1 + trial * 0.3, frequencyPenalty: trial * 0.1, presencePenalty: 0.2 * (trial % 3) };
      const sampler = new Sampler(gpu, vocab);
      sampler.setParams(p);
      sampler.resetCounts(prompt);
      const got = await draws(gpu, sampler, gpu.storage('logits', logits), [trial]);
      expect(got[0]).toBe(argmaxRef(adjustedLogitsRef(logits, null, counts, p)));
    }
  });

  // A peaked vocabulary: 300 strong tokens over a flat background, so the candidate window holds the top-p
  // threshold but not the k-th largest of a large top-k (the kernel's mixed path).
  const peaked = (vocab: number) => {
    const logits = randomArray(vocab, 31, 6);
    const r = rng(32);
    for (let i = 0; i < 300; i++) logits[Math.floor(r() * vocab)] = 10 + 3 * r();
    return logits;
  };
  const filters: {
    name: string;
    vocab: number;
    n: number;
    p: (z: Float64Array) => SamplingParams;
    penalties?: boolean;
    logits?: (vocab: number) => Float32Array;
  }[] = [
    { name: 'temperature 0.7', vocab: 512, n: 1200, p: () => ({ ...GREEDY, temperature: 0.7 }) },
    { name: 'top-k 5', vocab: 512, n: 1200, p: () => ({ ...GREEDY, temperature: 1, topK: 5 }) },
    {
      name: 'top-p',
      vocab: 512,
      n: 1200,
      p: (z) => {
        const base = { ...GREEDY, temperature: 1.3 };
        const c = sortedProbs(z, base).map(((s) => (x: number) => (s += x))(0));
        return { ...base, topP: (c[6] + c[7]) / 2 }; // keeps 8 tokens
      },
    },
    {
      name: 'min-p',
      vocab: 512,
      n: 1200,
      p: (z) => {
        const base = { ...GREEDY, temperature: 1 };
        const s = sortedProbs(z, base);
        return { ...base, minP: Math.sqrt(s[9] * s[10]) / s[0] }; // keeps 10 tokens
      },
    },
    {
      name: 'top-k 40 + top-p + min-p + penalties',
      vocab: 512,
      n: 1200,
      penalties: true,
      p: (z) => {
        const base = { ...GREEDY, temperature: 0.9, topK: 40, repetitionPenalty: 1.3, frequencyPenalty: 0.2, presencePenalty: 0.1 };
        const c = sortedProbs(z, base).map(((s) => (x: number) => (s += x))(0));
        return { ...base, topP: (c[11] + c[12]) / 2, minP: 0.01 };
      },
    },
    {
      name: 'llama vocab: top-k 40 + top-p',
      vocab: 32000,
      n: 300,
      p: (z) => {
        const base = { ...GREEDY, temperature: 0.8, topK: 40 };
        const c = sortedProbs(z, base).map(((s) => (x: number) => (s += x))(0));
        return { ...base, topP: (c[14] + c[15]) / 2 };
      },
    },
    { name: 'llama vocab: temperature 1', vocab: 32000, n: 300, p: () => ({ ...GREEDY, temperature: 1 }) },
    {
      name: 'peaked llama vocab: top-k 2000 + top-p',
      vocab: 32000,
      n: 300,
      logits: peaked,
      p: (z) => {
        const base = { ...GREEDY, temperature: 1, topK: 2000 };
        const c = sortedProbs(z, base).map(((s) => (x: number) => (s += x))(0));
        return { ...base, topP: (c[39] + c[40]) / 2 };
      },
    },
  ];

  it.each(filters)('$name (vocab $vocab)', async ({ vocab, n, p, penalties, logits: makeLogits }) => {
    const logits = makeLogits ? makeLogits(vocab) : randomArray(vocab, vocab + n, 6);
    const prompt = penalties ? Array.from({ length: 30 }, (_, i) => (i * 37) % 64) : [];
    const counts = new Uint32Array(vocab);
    for (const id of prompt) counts[id]++;
    // Parameters are derived from the penalized logits, which are what the filters see.
    const z = adjustedLogitsRef(logits, null, counts, { ...GREEDY, repetitionPenalty: 1.3, frequencyPenalty: 0.2, presencePenalty: 0.1 });
    const params = p(penalties ? z : Float64Array.from(logits));
    const sampler = new Sampler(gpu, vocab);
    sampler.setParams(params);
    sampler.resetCounts(prompt);
    const draws_ = slow ? Math.floor(n / 8) : n; // SwiftShader runs the single-workgroup sampler ~10x slower
    const ids = await draws(gpu, sampler, gpu.storage('logits', logits), seeds(draws_), penalties ? prompt : undefined);
    expectDistribution(ids, samplingProbsRef(adjustedLogitsRef(logits, null, counts, params), params), `sampler ${JSON.stringify(params)}`);
  });

  it('top-k keeps the lowest ids among ties at the k-th value', async () => {
    const vocab = 512;
    const logits = new Float32Array(vocab).fill(-5);
    for (const id of [300, 40, 200, 7, 450]) logits[id] = 1; // five tied at the top
    logits[99] = 1.5;
    const p = { ...GREEDY, temperature: 1, topK: 3 };
    const sampler = new Sampler(gpu, vocab);
    sampler.setParams(p);
    sampler.resetCounts();
    const ids = await draws(gpu, sampler, gpu.storage('logits', logits), seeds(slow ? 100 : 600));
    const probs = samplingProbsRef(Float64Array.from(logits), p);
    expect([...probs.keys()].filter((i) => probs[i] > 0)).toEqual([7, 40, 99]);
    expectDistribution(ids, probs, 'top-k ties');
  });

  it('same seed, same params, same logits: same token; the id lands at outIndex', async () => {
    const vocab = 32000;
    const logits = gpu.storage('logits', randomArray(vocab, 5, 3));
    const sampler = new Sampler(gpu, vocab);
    sampler.setParams({ ...GREEDY, temperature: 1, topP: 0.95 });
    sampler.resetCounts();
    const a = await draws(gpu, sampler, logits, [11, 12, 13, 11, 12, 13]);
    expect([...a.slice(3)]).toEqual([...a.slice(0, 3)]);
    expect(new Set(a).size).toBeGreaterThan(1); // different seeds do draw differently here (flat distribution)

    const tokens = gpu.storage('tokens', new Uint32Array([9, 9, 9, 9, 9]));
    const step = new StepUniform(gpu);
    step.write(0, 1, 11);
    const bound = sampler.bind('sampler.outIndex', logits, tokens, 3, step.buffer);
    await gpu.run('sample', (pass) => bound.encode(pass));
    expect([...new Uint32Array(await gpu.read(tokens))]).toEqual([9, 9, 9, a[0], 9]);
  });

  // Structured output's token mask: a masked id is never drawn, and the allowed ids keep their reference
  // probabilities renormalized (the reference with masked logits at -Infinity).
  it.each([512, 32000])('a token mask restricts greedy and sampled draws to the allowed ids (vocab %i)', async (vocab) => {
    const logits = randomArray(vocab, vocab + 5, 6);
    const r = rng(vocab);
    const bits = new Uint32Array(Math.ceil(vocab / 32));
    const allowed = (i: number) => (bits[i >>> 5] & (1 << (i & 31))) !== 0;
    for (let i = 0; i < vocab; i++) if (r() < 0.25) bits[i >>> 5] |= 1 << (i & 31);
    const best = argmaxRef(logits);
    bits[best >>> 5] &= ~(1 << (best & 31)); // the unmasked argmax is banned
    const masked = Float64Array.from(logits, (v, i) => (allowed(i) ? v : -Infinity));
    const sampler = new Sampler(gpu, vocab);
    sampler.resetCounts();
    const lb = gpu.storage('logits', logits);
    sampler.setMask(bits);
    expect((await draws(gpu, sampler, lb, [1]))[0]).toBe(argmaxRef(masked));

    // One allowed id, far below the others and pushed further down by a bias: it is still the one drawn.
    const one = new Uint32Array(bits.length);
    one[(vocab - 2) >>> 5] = 1 << ((vocab - 2) & 31);
    sampler.setMask(one);
    sampler.setLogitBias(new Map([[vocab - 2, -1e6]]));
    sampler.setParams({ ...GREEDY, temperature: 1, topK: 5 });
    expect([...(await draws(gpu, sampler, lb, [2, 3]))]).toEqual([vocab - 2, vocab - 2]);
    sampler.setLogitBias(null);

    const params = { ...GREEDY, temperature: 1, topK: 40 };
    sampler.setParams(params);
    sampler.setMask(bits);
    const n = slow ? 100 : 600;
    const ids = await draws(gpu, sampler, lb, seeds(n));
    expectDistribution(ids, samplingProbsRef(masked, params), `masked sampler ${JSON.stringify(params)}`);

    // Lifting the mask brings back the unmasked argmax.
    sampler.setMask(null);
    sampler.setParams(GREEDY);
    expect((await draws(gpu, sampler, lb, [4]))[0]).toBe(best);
    expect(() => sampler.setMask(new Uint32Array(3))).toThrow(KernelShapeError);
  });

  it('rejects bad parameters with typed errors', () => {
    const sampler = new Sampler(gpu, 512);
    expect(() => sampler.setParams({ ...GREEDY, temperature: -1 })).toThrow(SamplingParamsError);
    expect(() => sampler.setParams({ ...GREEDY, topP: 0 })).toThrow(SamplingParamsError);
    expect(() => sampler.setParams({ ...GREEDY, topK: 1.5 })).toThrow(SamplingParamsError);
    expect(() => sampler.setParams({ ...GREEDY, minP: 1 })).toThrow(SamplingParamsError);
    expect(() => sampler.setParams({ ...GREEDY, repetitionPenalty: 0 })).toThrow(SamplingParamsError);
    expect(() => sampler.setLogitBias(new Map([[512, 1]]))).toThrow(SamplingParamsError);
    expect(() => sampler.resetCounts([-1])).toThrow(SamplingParamsError);
    expect(() => new Sampler(gpu, 0)).toThrow(KernelShapeError);
    expect(() => sampler.bind('bad', gpu.storage('logits', 512 * 4), gpu.storage('tokens', 8), 2, new StepUniform(gpu).buffer)).toThrow(KernelShapeError);
  });
});
