// Residual add (shaders/add.wgsl) against the float64 reference: x += y.
// Tolerance: 0 absolute + 2^-24 relative (one correctly rounded f32 addition).
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import { Add } from '../../src/gpu/ops/add.ts';
import { addRef } from '../reference/elementwise.ts';
import { expectClose, randomArray, testGpus } from '../helpers/gpu.ts';

const gpus = await testGpus();

describe.each(gpus)('add on $name', ({ gpu }) => {
  it.each([
    { name: 'llama2-7b decode', n: 1, dim: 4096 },
    { name: 'llama2-7b prefill', n: 64, dim: 4096 },
    { name: 'stories260K', n: 5, dim: 64 },
    { name: 'awkward', n: 3, dim: 1001 },
  ])('$name n=$n dim=$dim', async ({ n, dim }) => {
    const x0 = randomArray(n * dim, 1, 10);
    const y = randomArray(n * dim, 2, 10);
    const x = gpu.storage('x', new Float32Array([...x0, 7, 7, 7]));
    const bound = new Add(gpu, dim).bind('add.test', x, gpu.storage('y', y));
    await gpu.run('add', (pass) => bound.encode(pass, n));
    const got = await gpu.readF32(x);
    expectClose(got.subarray(0, n * dim), addRef(x0, y), 0, 2 ** -24, 'add');
    expect([...got.subarray(n * dim)]).toEqual([7, 7, 7]);
  });

  it('rejects a bad dim when built', () => {
    expect(() => new Add(gpu, -1)).toThrow(KernelShapeError);
  });
});
