// Causal grouped-query attention (shaders/attention*.wgsl + attention_merge.wgsl) against the float64 reference.
// The cache rows are written from the CPU (the Rope op writes them in the model; test/kernels/rope.test.ts).
// The queries sit in rows wider than themselves (the model's qkv rows), the rest of each row filled with values that
// would show if read. Every case runs twice: without the step's position (the split table decides the layout) and
// with it (a context of at most one chunk of keys then runs as one dispatch, without the merge pass).
// Tolerances:
// - attention, compared with the reference computed from the values actually in the cache (f16-rounded K/V on the
//   f16 path): ATTENTION_TOL (src/reference/attention.ts).
// - f16 path, compared with the reference from the unrounded f32 K/V: 4e-3 absolute (half rounding of K moves a
//   score by ~|q| |k| 2^-11, of V moves an output by <= 2^-11 of |v| <= 1).
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import type { Gpu } from '../../src/gpu/device.ts';
import { Attention } from '../../src/gpu/ops/attention.ts';
import { createKvCache, type KvCache } from '../../src/gpu/ops/kv-cache.ts';
import { StepUniform } from '../../src/gpu/ops/step.ts';
import { ATTENTION_TOL, attentionRef } from '../../src/reference/attention.ts';
import { expectClose, randomArray, testGpus } from '../helpers/gpu.ts';
import { writeRows } from '../../src/reference/kv-rows.ts';

const gpus = await testGpus();

const MODELS = {
  'llama2-7b': { nHeads: 32, nKvHeads: 32, headDim: 128, maxSeqLen: 4096 },
  'llama2-13b': { nHeads: 40, nKvHeads: 40, headDim: 128, maxSeqLen: 4096 },
  'llama2-70b': { nHeads: 64, nKvHeads: 8, headDim: 128, maxSeqLen: 4096 },
  stories260K: { nHeads: 8, nKvHeads: 4, headDim: 8, maxSeqLen: 512 },
} as const;

type ModelName = keyof typeof MODELS;

const CASES: { model: ModelName; n: number; pos: number; qScale?: number; slowAdapterToo: boolean; gpuLayout?: boolean }[] = [
  { model: 'llama2-7b', n: 1, pos: 0, slowAdapterToo: true },
  { model: 'llama2-7b', n: 1, pos: 1, slowAdapterToo: false },
  { model: 'llama2-7b', n: 1, pos: 17, slowAdapterToo: true },
  { model: 'llama2-7b', n: 1, pos: 4095, slowAdapterToo: true },
  { model: 'llama2-7b', n: 5, pos: 9, slowAdapterToo: false },
  { model: 'llama2-7b', n: 64, pos: 300, slowAdapterToo: false },
  { model: 'llama2-13b', n: 1, pos: 700, slowAdapterToo: false },
  { model: 'llama2-70b', n: 1, pos: 17, slowAdapterToo: true },
  { model: 'llama2-70b', n: 1, pos: 4095, slowAdapterToo: false },
  { model: 'llama2-70b', n: 5, pos: 1000, slowAdapterToo: true },
  { model: 'stories260K', n: 1, pos: 0, slowAdapterToo: true },
  { model: 'stories260K', n: 1, pos: 1, slowAdapterToo: true },
  { model: 'stories260K', n: 1, pos: 17, slowAdapterToo: true },
  { model: 'stories260K', n: 1, pos: 511, slowAdapterToo: true },
  { model: 'stories260K', n: 5, pos: 3, slowAdapterToo: true },
  { model: 'stories260K', n: 64, pos: 100, slowAdapterToo: true },
  { model: 'stories260K', n: 64, pos: 0, slowAdapterToo: true },
  // Scores of +-100 and more: exp would overflow without the running max.
  { model: 'stories260K', n: 5, pos: 200, qScale: 60, slowAdapterToo: true },
  { model: 'llama2-7b', n: 1, pos: 1000, qScale: 20, slowAdapterToo: false },
  // The layout hardware GPUs get (128 keys per chunk, ~512 workgroups); the adapters here default to the CPU layout.
  { model: 'llama2-7b', n: 1, pos: 1000, slowAdapterToo: false, gpuLayout: true },
  { model: 'llama2-70b', n: 5, pos: 1000, slowAdapterToo: true, gpuLayout: true },
  { model: 'stories260K', n: 1, pos: 511, slowAdapterToo: true, gpuLayout: true },
  { model: 'stories260K', n: 64, pos: 100, slowAdapterToo: true, gpuLayout: true },
  // At most one chunk of keys with the GPU layout: one dispatch when the position is known.
  { model: 'llama2-7b', n: 1, pos: 100, slowAdapterToo: true, gpuLayout: true },
  { model: 'llama2-70b', n: 5, pos: 40, slowAdapterToo: true, gpuLayout: true },
];
const GPU_LAYOUT = { keysPerChunk: 128, targetWorkgroups: 512 };

describe.each(gpus)('attention on $name', ({ name, gpu }) => {
  const caches = new Map<ModelName, KvCache>();
  const cacheFor = (model: ModelName) => {
    let c = caches.get(model);
    if (!c) {
      const m = MODELS[model];
      c = createKvCache(gpu, `test.${model}`, m.maxSeqLen, m.nKvHeads * m.headDim);
      caches.set(model, c);
    }
    return c;
  };
  const cases = CASES.filter((c) => name === 'llvmpipe' || c.slowAdapterToo);

  it.each(cases)(`$model n=$n pos=$pos gpuLayout=$gpuLayout (f16 cache: ${gpu.f16})`, async ({ model, n, pos, qScale, gpuLayout }) => {
    const m = MODELS[model];
    const kvDim = m.nKvHeads * m.headDim;
    const cache = cacheFor(model);
    const seed = pos * 131 + n;
    const past = { k: randomArray(pos * kvDim, seed + 1), v: randomArray(pos * kvDim, seed + 2) };
    const k = randomArray(n * kvDim, seed + 3);
    const v = randomArray(n * kvDim, seed + 4);
    const q = randomArray(n * m.nHeads * m.headDim, seed + 5, qScale ?? 2);
    const keys = new Float32Array((pos + n) * kvDim);
    const values = new Float32Array((pos + n) * kvDim);
    keys.set(past.k);
    keys.set(k, pos * kvDim);
    values.set(past.v);
    values.set(v, pos * kvDim);
    const storedK = writeRows(gpu, cache, cache.keyCache, keys, 0);
    const storedV = writeRows(gpu, cache, cache.valueCache, values, 0);

    const width = m.nHeads * m.headDim;
    const qStride = width + 2 * kvDim;
    const rows = new Float32Array(n * qStride).fill(1e4);
    for (let t = 0; t < n; t++) rows.set(q.subarray(t * width, (t + 1) * width), t * qStride);
    const qb = gpu.storage('qkv', rows);
    const step = new StepUniform(gpu, 'attention.test.step');
    step.write(pos, n);
    const tuning = gpuLayout ? GPU_LAYOUT : undefined;
    const op = new Attention(gpu, { ...m, maxTokens: 64, tuning, qStride }, cache);
    for (const knownPos of [undefined, pos]) {
      const out = gpu.storage('out', q.byteLength);
      const attention = op.bind('attention.test', qb, out, step.buffer);
      await gpu.checked('attention', () => gpu.run('attention', (pass) => attention.encode(pass, n, knownPos)));
      const got = await gpu.readF32(out);
      const what = knownPos === undefined ? 'position unknown' : 'position known';
      expectClose(got, attentionRef(q, storedK, storedV, n, pos, m), ATTENTION_TOL.atol, ATTENTION_TOL.rtol, `attention vs cached K/V (${what})`);
      if (cache.f16) {
        expectClose(got, attentionRef(q, keys, values, n, pos, m), 4e-3, 0, `attention vs unrounded K/V (${what})`);
      }
      out.destroy();
    }
    qb.destroy();
  });

  it('runs one dispatch when the context fits one chunk of keys and the position is known', () => {
    const o = { ...MODELS['llama2-7b'], maxTokens: 4, tuning: GPU_LAYOUT };
    const bound = new Attention(gpu, o, cacheFor('llama2-7b')).bind('attention.count', gpu.storage('q', 4 * 4096 * 4), gpu.storage('out', 4 * 4096 * 4), new StepUniform(gpu).buffer);
    const count = (pos?: number) => {
      let dispatches = 0;
      const pass = { setPipeline() {}, setBindGroup() {}, dispatchWorkgroups: () => dispatches++ } as unknown as GPUComputePassEncoder;
      bound.encode(pass, 1, pos);
      return dispatches;
    };
    expect(count(undefined)).toBe(2);
    expect(count(0)).toBe(1);
    expect(count(127)).toBe(1);
    expect(count(128)).toBe(2);
  });

  it('rejects unsupported shapes when built', () => {
    const cache = cacheFor('stories260K');
    const o = { nHeads: 8, nKvHeads: 4, headDim: 8, maxSeqLen: 512, maxTokens: 64 };
    expect(() => new Attention(gpu, { ...o, nHeads: 6 }, cache)).toThrow(KernelShapeError); // 6 heads, 4 kv heads
    expect(() => new Attention(gpu, { ...o, nHeads: 4, nKvHeads: 4, headDim: 7 }, createKvCache(gpu, 'odd', 16, 28))).toThrow(KernelShapeError);
    expect(() => new Attention(gpu, { ...o, nHeads: 1, nKvHeads: 1, headDim: 512 }, createKvCache(gpu, 'wide', 16, 512))).toThrow(KernelShapeError);
    expect(() => new Attention(gpu, { ...o, maxSeqLen: 1024 }, cache)).toThrow(KernelShapeError); // longer than the cache
    expect(() => createKvCache(gpu, 'odd', 16, 14)).toThrow(KernelShapeError);
    const step = new StepUniform(gpu);
    const bound = new Attention(gpu, o, cache).bind('attention.bad', gpu.storage('q', 64 * 64 * 4), gpu.storage('out', 64 * 64 * 4), step.buffer);
    expect(() => bound.encode({} as GPUComputePassEncoder, 65)).toThrow(KernelShapeError);
  });
});
