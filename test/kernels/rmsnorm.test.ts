// RMSNorm kernel (shaders/rmsnorm.wgsl) against the float64 reference.
// Tolerance: 1e-5 absolute + 1e-5 relative (f32 accumulation over at most 11008 squares of values in [-1, 1]).
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import { RmsNorm } from '../../src/gpu/ops/rmsnorm.ts';
import { RMSNORM_TOL, rmsnormRef } from '../../src/reference/norm.ts';
import { expectClose, randomArray, testGpus } from '../helpers/gpu.ts';

const gpus = await testGpus();

describe.each(gpus)('rmsnorm on $name', ({ gpu }) => {
  it.each([
    { name: 'llama2-7b', rows: 1, dim: 4096 },
    { name: 'prefill 7b', rows: 7, dim: 4096 },
    { name: 'stories260K', rows: 3, dim: 64 },
    { name: 'awkward', rows: 2, dim: 1001 },
  ])('$name rows=$rows dim=$dim', async ({ rows, dim }) => {
    const eps = 1e-5;
    const x = randomArray(rows * dim, 1, 2);
    const w = randomArray(dim, 2);
    const op = new RmsNorm(gpu, dim, eps);
    const xb = gpu.storage('x', x);
    const wb = gpu.storage('w', w);
    const out = gpu.storage('out', rows * dim * 4);
    const bound = op.bind('rmsnorm.test', xb, wb, out);
    await gpu.run('rmsnorm', (pass) => bound.encode(pass, rows));
    expectClose(await gpu.readF32(out), rmsnormRef(x, w, rows, dim, eps), RMSNORM_TOL.atol, RMSNORM_TOL.rtol, 'rmsnorm');
  });

  it('rejects a bad dim when built', () => {
    expect(() => new RmsNorm(gpu, 0, 1e-5)).toThrow(KernelShapeError);
  });
});
