// SwiGLU gate (shaders/swiglu.wgsl) against the float64 reference: hb = silu(hb) * hb2.
// Tolerance: 1e-6 absolute + 2e-6 relative (one exp, a division and two products in f32; inputs up to +-30 so
// the sigmoid saturates on both sides without overflow).
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import { SwiGlu } from '../../src/gpu/ops/swiglu.ts';
import { swigluRef } from '../reference/elementwise.ts';
import { expectClose, randomArray, testGpus } from '../helpers/gpu.ts';

const gpus = await testGpus();

describe.each(gpus)('swiglu on $name', ({ gpu }) => {
  it.each([
    { name: 'llama2-7b decode', n: 1, hiddenDim: 11008 },
    { name: 'llama2-7b prefill', n: 5, hiddenDim: 11008 },
    { name: 'llama2-70b', n: 1, hiddenDim: 28672 },
    { name: 'stories260K', n: 64, hiddenDim: 172 },
  ])('$name n=$n hiddenDim=$hiddenDim', async ({ n, hiddenDim }) => {
    const hb0 = randomArray(n * hiddenDim, 1, 30);
    const hb2 = randomArray(n * hiddenDim, 2, 2);
    // Rows past n must stay untouched.
    const hb = gpu.storage('hb', new Float32Array([...hb0, ...hb0.subarray(0, hiddenDim)]));
    const bound = new SwiGlu(gpu, hiddenDim).bind('swiglu.test', hb, gpu.storage('hb2', hb2));
    await gpu.run('swiglu', (pass) => bound.encode(pass, n));
    const got = await gpu.readF32(hb);
    expectClose(got.subarray(0, n * hiddenDim), swigluRef(hb0, hb2), 1e-6, 2e-6, 'swiglu');
    expect(got.subarray(n * hiddenDim)).toEqual(hb0.subarray(0, hiddenDim));
  });

  it('rejects a bad hiddenDim when built', () => {
    expect(() => new SwiGlu(gpu, 0)).toThrow(KernelShapeError);
  });
});
