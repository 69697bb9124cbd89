// RoPE kernel (shaders/rope.wgsl) against the float64 reference, interleaved pairs, on each token's qkv row (q, k
// and v side by side): q rotated in place, the step's keys rotated into the KV cache and its values copied there
// (k and v themselves are left as they were).
// Tolerances: ROPE_TOL for q and f32-cache keys (src/reference/attention.ts; independent of the position: checked up
// to 4095 and at a far position 100000 with linear scaling). f32-cache values are bit-exact. An f16 cache (lavapipe)
// adds the half rounding: F16_RTOL relative.
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import { createKvCache } from '../../src/gpu/ops/kv-cache.ts';
import { Rope } from '../../src/gpu/ops/rope.ts';
import { StepUniform } from '../../src/gpu/ops/step.ts';
import { F16_RTOL, ROPE_TOL, ropeRef } from '../../src/reference/attention.ts';
import { expectClose, randomArray, testGpus } from '../helpers/gpu.ts';
import { readRows } from '../../src/reference/kv-rows.ts';

/** Each token's q, k and v rows side by side, as the qkv matvec writes them. */
function packQkv(n: number, parts: Float32Array[]): Float32Array {
  const widths = parts.map((p) => p.length / n);
  const row = widths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(n * row);
  for (let t = 0; t < n; t++) {
    let o = t * row;
    parts.forEach((p, i) => {
      out.set(p.subarray(t * widths[i], (t + 1) * widths[i]), o);
      o += widths[i];
    });
  }
  return out;
}

/** The inverse of packQkv: rows of `widths` floats per token. */
function unpackQkv(n: number, qkv: Float32Array, widths: number[]): Float32Array[] {
  const row = widths.reduce((a, b) => a + b, 0);
  let start = 0;
  return widths.map((w) => {
    const out = new Float32Array(n * w);
    for (let t = 0; t < n; t++) out.set(qkv.subarray(t * row + start, t * row + start + w), t * w);
    start += w;
    return out;
  });
}

const gpus = await testGpus();

describe.each(gpus)('rope on $name', ({ gpu }) => {
  it.each([
    { name: 'llama2-7b decode', nHeads: 32, nKvHeads: 32, headDim: 128, n: 1, pos: 17, theta: 10000, scale: 1 },
    { name: 'llama2-7b last position', nHeads: 32, nKvHeads: 32, headDim: 128, n: 1, pos: 4095, theta: 10000, scale: 1 },
    { name: 'llama2-7b prefill', nHeads: 32, nKvHeads: 32, headDim: 128, n: 5, pos: 3000, theta: 10000, scale: 1 },
    { name: 'llama2-70b gqa', nHeads: 64, nKvHeads: 8, headDim: 128, n: 3, pos: 0, theta: 10000, scale: 1 },
    { name: 'stories260K prefill', nHeads: 8, nKvHeads: 4, headDim: 8, n: 64, pos: 100, theta: 10000, scale: 1 },
    { name: 'large theta, linear scaling', nHeads: 8, nKvHeads: 2, headDim: 64, n: 4, pos: 100000, theta: 1000000, scale: 4 },
    { name: 'partial rotary (32 of 64 dims)', nHeads: 4, nKvHeads: 2, headDim: 64, n: 3, pos: 777, theta: 10000, scale: 1, rotaryDims: 32 },
  ])('$name n=$n pos=$pos', async ({ nHeads, nKvHeads, headDim, n, pos, theta, scale, rotaryDims }: {
    nHeads: number; nKvHeads: number; headDim: number; n: number; pos: number; theta: number; scale: number; rotaryDims?: number;
  }) => {
    const kvDim = nKvHeads * headDim;
    // A fresh (zero) cache with one row past the step's rows: the rows either side of them must stay zero.
    const cache = createKvCache(gpu, 'rope.test', pos + n + 1, kvDim);
    const q0 = randomArray(n * nHeads * headDim, 1);
    const k0 = randomArray(n * kvDim, 2);
    const v0 = randomArray(n * kvDim, 3);
    const op = new Rope(gpu, { nHeads, nKvHeads, headDim, theta, scale, rotaryDims, maxTokens: n });
    const qkv = gpu.storage('qkv', packQkv(n, [q0, k0, v0]));
    const step = new StepUniform(gpu, 'rope.test.step');
    step.write(pos, n);
    const bound = op.bind('rope.test', qkv, cache, step.buffer);
    await gpu.checked('rope', () => gpu.run('rope', (pass) => bound.encode(pass, n)));
    const rel = cache.f16 ? F16_RTOL : ROPE_TOL.rtol;
    const [q, k, v] = unpackQkv(n, await gpu.readF32(qkv), [nHeads * headDim, kvDim, kvDim]);
    expectClose(q, ropeRef(q0, n, nHeads * headDim, headDim, pos, theta, scale, rotaryDims), ROPE_TOL.atol, ROPE_TOL.rtol, 'rope q');
    expectClose(await readRows(gpu, cache, cache.keyCache, pos, n), ropeRef(k0, n, kvDim, headDim, pos, theta, scale, rotaryDims), ROPE_TOL.atol, rel, 'cached keys');
    const values = await readRows(gpu, cache, cache.valueCache, pos, n);
    if (cache.f16) expectClose(values, v0, 2 ** -24, F16_RTOL, 'cached values (f16)');
    else expect(values).toEqual(v0);
    expect(k).toEqual(k0);
    expect(v).toEqual(v0);
    for (const row of [pos - 1, pos + n].filter((r) => r >= 0)) {
      for (const buffer of [cache.keyCache, cache.valueCache]) {
        expect((await readRows(gpu, cache, buffer, row, 1)).every((x) => x === 0)).toBe(true);
      }
    }
    for (const b of [qkv, cache.keyCache, cache.valueCache]) b.destroy();
  });

  it('stores nothing past the end of the cache', async () => {
    const o = { nHeads: 8, nKvHeads: 4, headDim: 8, theta: 10000, scale: 1, maxTokens: 4 };
    const cache = createKvCache(gpu, 'rope.short', 6, 32);
    const k0 = randomArray(4 * 32, 4);
    const step = new StepUniform(gpu, 'rope.short.step');
    step.write(4, 4); // positions 4..7 of a 6-row cache
    const qkv = gpu.storage('qkv', packQkv(4, [new Float32Array(4 * 64), k0, k0]));
    const bound = new Rope(gpu, o).bind('rope.short', qkv, cache, step.buffer);
    await gpu.checked('rope', () => gpu.run('rope', (pass) => bound.encode(pass, 4)));
    const values = await readRows(gpu, cache, cache.valueCache, 0, 6);
    expect(values.subarray(0, 4 * 32).every((x) => x === 0)).toBe(true);
    expectClose(values.subarray(4 * 32), k0.subarray(0, 2 * 32), 2 ** -24, cache.f16 ? 2 ** -10 : 0, 'the rows that fit');
  });

  it('rejects bad shapes when built or bound', () => {
    const o = { nHeads: 8, nKvHeads: 4, headDim: 8, theta: 10000, scale: 1, maxTokens: 4 };
    expect(() => new Rope(gpu, { ...o, headDim: 7 })).toThrow(KernelShapeError);
    expect(() => new Rope(gpu, { ...o, nHeads: 0 })).toThrow(KernelShapeError);
    expect(() => new Rope(gpu, { ...o, scale: 0 })).toThrow(KernelShapeError);
    expect(() => new Rope(gpu, { ...o, rotaryDims: 3 })).toThrow(/rotaryDims must be even/);
    expect(() => new Rope(gpu, { ...o, rotaryDims: 10 })).toThrow(/rotaryDims must be even/);
    const qkv = gpu.storage('qkv', 4 * 128 * 4);
    const step = new StepUniform(gpu).buffer;
    expect(() => new Rope(gpu, o).bind('rope.wrong cache', qkv, createKvCache(gpu, 'wide', 8, 64), step)).toThrow(/KV cache rows hold 64/);
    expect(() => new Rope(gpu, o).bind('rope.short qkv', gpu.storage('qkv.short', 4 * 100 * 4), createKvCache(gpu, 'ok', 8, 32), step)).toThrow(/q, k and v need/);
    const bound = new Rope(gpu, o).bind('rope.bad', qkv, createKvCache(gpu, 'ok', 8, 32), step);
    expect(() => bound.encode({} as GPUComputePassEncoder, 5)).toThrow(KernelShapeError);
  });
});
