// RoPE kernel (shaders/rope.wgsl) against the float64 reference, interleaved pairs, in place on q and k.
// Tolerance: 2e-6 absolute + 2e-6 relative for inputs in [-1, 1]. The angle is reduced modulo one turn in exact
// integer arithmetic, so the error is that of one f32 cos/sin in [-pi, pi) and a 2x2 rotation, independent of the
// position (checked up to 4095 and at a far position 100000 with linear scaling).
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import { Rope } from '../../src/gpu/ops/rope.ts';
import { StepUniform } from '../../src/gpu/ops/step.ts';
import { ropeRef } from '../reference/attention.ts';
import { expectClose, randomArray, testGpus } from '../helpers/gpu.ts';

const gpus = await testGpus();

describe.each(gpus)('rope on $name', ({ gpu }) => {
  it.each([
    { name: 'llama2-7b decode', nHeads: 32, nKvHeads: 32, headDim: 128, n: 1, pos: 17, theta: 10000, scale: 1 },
    { name: 'llama2-7b last position', nHeads: 32, nKvHeads: 32, headDim: 128, n: 1, pos: 4095, theta: 10000, scale: 1 },
    { name: 'llama2-7b prefill', nHeads: 32, nKvHeads: 32, headDim: 128, n: 5, pos: 3000, theta: 10000, scale: 1 },
    { name: 'llama2-70b gqa', nHeads: 64, nKvHeads: 8, headDim: 128, n: 3, pos: 0, theta: 10000, scale: 1 },
    { name: 'stories260K prefill', nHeads: 8, nKvHeads: 4, headDim: 8, n: 64, pos: 100, theta: 10000, scale: 1 },
    { name: 'large theta, linear scaling', nHeads: 8, nKvHeads: 2, headDim: 64, n: 4, pos: 100000, theta: 1000000, scale: 4 },
  ])('$name n=$n pos=$pos', async ({ nHeads, nKvHeads, headDim, n, pos, theta, scale }) => {
    const q0 = randomArray(n * nHeads * headDim, 1);
    const k0 = randomArray(n * nKvHeads * headDim, 2);
    const op = new Rope(gpu, { nHeads, nKvHeads, headDim, theta, scale, maxTokens: n });
    const q = gpu.storage('q', q0);
    const k = gpu.storage('k', k0);
    const step = new StepUniform(gpu, 'rope.test.step');
    step.write(pos, n);
    const bound = op.bind('rope.test', q, k, step.buffer);
    await gpu.run('rope', (pass) => bound.encode(pass, n));
    expectClose(await gpu.readF32(q), ropeRef(q0, n, nHeads * headDim, headDim, pos, theta, scale), 2e-6, 2e-6, 'rope q');
    expectClose(await gpu.readF32(k), ropeRef(k0, n, nKvHeads * headDim, headDim, pos, theta, scale), 2e-6, 2e-6, 'rope k');
  });

  it('rejects bad shapes when built', () => {
    const o = { nHeads: 8, nKvHeads: 4, headDim: 8, theta: 10000, scale: 1, maxTokens: 4 };
    expect(() => new Rope(gpu, { ...o, headDim: 7 })).toThrow(KernelShapeError);
    expect(() => new Rope(gpu, { ...o, nHeads: 0 })).toThrow(KernelShapeError);
    expect(() => new Rope(gpu, { ...o, scale: 0 })).toThrow(KernelShapeError);
    const bound = new Rope(gpu, o).bind('rope.bad', gpu.storage('q', 4 * 64 * 4), gpu.storage('k', 4 * 32 * 4), new StepUniform(gpu).buffer);
    expect(() => bound.encode({} as GPUComputePassEncoder, 5)).toThrow(KernelShapeError);
  });
});
