// KV-cache write (shaders/kv_write*.wgsl) and causal grouped-query attention (shaders/attention*.wgsl +
// attention_merge.wgsl) against the float64 reference.
// Tolerances:
// - kv_write: f32 cache bit-exact; f16 cache within one half ulp-ish step of the input (|got - x| <= 2^-10 |x| + 2^-24).
// - attention, compared with the reference computed from the values actually in the cache (f16-rounded K/V on the
//   f16 path): 3e-5 absolute + 1e-4 relative (f32 dot products of 128 terms, online softmax over up to 4096 keys,
//   outputs are convex combinations of V in [-1, 1]).
// - f16 path, compared with the reference from the unrounded f32 K/V: 4e-3 absolute (half rounding of K moves a
//   score by ~|q| |k| 2^-11, of V moves an output by <= 2^-11 of |v| <= 1).
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/formats/quant.ts';
import type { Gpu } from '../../src/gpu/device.ts';
import { Attention } from '../../src/gpu/ops/attention.ts';
import { createKvCache, KvWrite, type KvCache } from '../../src/gpu/ops/kv-cache.ts';
import { StepUniform } from '../../src/gpu/ops/step.ts';
import { attentionRef } from '../reference/attention.ts';
import { expectClose, randomArray, testGpus } from '../helpers/gpu.ts';

const gpus = await testGpus();

const F16_TO_F32 = Float32Array.from({ length: 65536 }, (_, h) => f16BitsToF32(h));

/**
 * Writes f32 rows into the cache starting at row `first`, in the cache's element type (CPU round to nearest even on
 * the f16 path), and returns the values as stored.
 */
function writeRows(gpu: Gpu, cache: KvCache, buffer: GPUBuffer, rows: Float32Array, first: number): Float32Array {
  if (!cache.f16) {
    gpu.write(buffer, rows, first * cache.kvDim * 4);
    return rows;
  }
  const h = new Uint16Array(rows.length);
  const stored = new Float32Array(rows.length);
  for (let i = 0; i < rows.length; i++) stored[i] = F16_TO_F32[(h[i] = f32ToF16Bits(rows[i]))];
  gpu.write(buffer, h, first * cache.kvDim * 2);
  return stored;
}

async function readRows(gpu: Gpu, cache: KvCache, buffer: GPUBuffer, first: number, count: number): Promise<Float32Array> {
  const bytes = cache.f16 ? 2 : 4;
  const raw = await gpu.read(buffer, first * cache.kvDim * bytes, count * cache.kvDim * bytes);
  return cache.f16 ? Float32Array.from(new Uint16Array(raw), (h) => F16_TO_F32[h]) : new Float32Array(raw);
}

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
    const storedK = writeRows(gpu, cache, cache.keyCache, past.k, 0);
    const storedV = writeRows(gpu, cache, cache.valueCache, past.v, 0);

    const qb = gpu.storage('q', q);
    const kb = gpu.storage('k', k);
    const vb = gpu.storage('v', v);
    const out = gpu.storage('out', q.byteLength);
    const step = new StepUniform(gpu, 'attention.test.step');
    step.write(pos, n);
    const write = new KvWrite(gpu, cache).bind('kvWrite.test', kb, vb, step.buffer);
    const tuning = gpuLayout ? GPU_LAYOUT : undefined;
    const attention = new Attention(gpu, { ...m, maxTokens: 64, tuning }, cache).bind('attention.test', qb, out, step.buffer);
    await gpu.checked('attention', () =>
      gpu.run('attention', (pass) => {
        write.encode(pass, n);
        attention.encode(pass, n);
      }),
    );

    // The step's rows as the cache holds them.
    const gotK = await readRows(gpu, cache, cache.keyCache, pos, n);
    const gotV = await readRows(gpu, cache, cache.valueCache, pos, n);
    for (const [got, want, what] of [
      [gotK, k, 'key'],
      [gotV, v, 'value'],
    ] as const) {
      if (cache.f16) expectClose(got, want, 2 ** -24, 2 ** -10, `kv_write ${what} (f16)`);
      else expect(got).toEqual(want);
    }

    const keys = new Float32Array((pos + n) * kvDim);
    const values = new Float32Array((pos + n) * kvDim);
    keys.set(storedK);
    keys.set(gotK, pos * kvDim);
    values.set(storedV);
    values.set(gotV, pos * kvDim);
    const got = await gpu.readF32(out);
    expectClose(got, attentionRef(q, keys, values, n, pos, m), 3e-5, 1e-4, 'attention vs cached K/V');
    if (cache.f16) {
      keys.set(past.k);
      keys.set(k, pos * kvDim);
      values.set(past.v);
      values.set(v, pos * kvDim);
      expectClose(got, attentionRef(q, keys, values, n, pos, m), 4e-3, 0, 'attention vs unrounded K/V');
    }
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
