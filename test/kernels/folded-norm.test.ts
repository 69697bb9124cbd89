// RMSNorm folded into the matrix-vector ops around it (FoldedNorm; the NORM_OUT and NORM_IN variants of
// shaders/matvec_*.wgsl and matmul_lanes_*.wgsl) against the float64 reference.
// A producer adds W_o xin into the residual x (accumulate) and writes x * g and partial sums of x^2; consumers read
// them and compute W (x * g) / rms(x), alone or as the SwiGLU pair silu(W1 xn) * (W3 xn).
// Tolerances:
// - producer: x as matvec.test.ts bounds it (256 f32 additions per product, 2^-24 each, on sum |W x| + |x0|); x * g
//   exactly the product of the stored x and g (one rounding: 2^-24 relative); the partial sums add to sum x^2
//   within 1e-6 relative (dim f32 additions of positive terms).
// - consumer: against the reference fed the stored x: 256 * 2^-24 * sum_c |W[r, c] xn[c]| plus 1e-5 * |result|
//   for 1 / rms (f32 inverseSqrt is within a few ulps; the sum of squares within 1e-6 relative).
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import { decodeWeights, encodeWeights, type ScaleDtype, type WeightDtype } from '../../src/formats/quant.ts';
import { MatVec } from '../../src/gpu/ops/matvec.ts';
import { FoldedNorm } from '../../src/gpu/ops/rmsnorm.ts';
import { destroyWeight, uploadWeight } from '../../src/gpu/weights.ts';
import { randomArray, testGpus } from '../helpers/gpu.ts';
import { swigluRef } from '../../src/reference/elementwise.ts';
import { absDotBound, LINEAR_ABS_TOL, MATVEC_REL_TOL, matvecRef, WEIGHT_VARIANTS } from '../../src/reference/linear.ts';

const gpus = await testGpus();
const EPS = 1e-5;

interface Case {
  dtype: WeightDtype;
  scaleDtype?: ScaleDtype;
  /** Residual width (the producer's rows, the consumers' cols). */
  dim: number;
  /** The producer's cols and the consumers' rows. */
  hidden: number;
  maxChunkBytes?: number;
  kernel?: 'matvec' | 'lanes';
}

const CASES: Case[] = [
  ...WEIGHT_VARIANTS.map((v) => ({ ...v, dim: 64, hidden: 172 })),
  { dtype: 'q4', dim: 1024, hidden: 512, maxChunkBytes: 64 * 1024 },
  { dtype: 'q4', dim: 256, hidden: 100, kernel: 'matvec' },
  { dtype: 'q4k', dim: 256, hidden: 512 },
  { dtype: 'q4k', dim: 512, hidden: 256, kernel: 'matvec' },
  { dtype: 'q5k', dim: 256, hidden: 512 },
  { dtype: 'q5k', dim: 512, hidden: 256, kernel: 'matvec' },
  { dtype: 'q6k', dim: 512, hidden: 256 },
  { dtype: 'q6k', dim: 256, hidden: 512, kernel: 'matvec' },
];
const LLAMA7B: Case[] = [{ dtype: 'q4', dim: 4096, hidden: 11008 }];

function dequantized(values: Float32Array, rows: number, cols: number, c: Case): Float32Array {
  if (c.dtype === 'f32') return values;
  return decodeWeights(encodeWeights(values, rows, cols, c.dtype, c.scaleDtype), rows, cols, c.dtype, c.scaleDtype);
}

function expectWithin(got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number, what: string): void {
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol(i))) throw new Error(`${what}: [${i}] is ${got[i]}, expected ${want[i]} (tolerance ${tol(i)})`);
  }
}

describe.each(gpus)('folded RMSNorm on $name', ({ name: adapter, gpu }) => {
  const cases = adapter === 'llvmpipe' ? [...CASES, ...LLAMA7B] : CASES;
  it.each(cases.map((c) => ({ c, label: `${c.kernel ?? ''} ${c.dtype}/${c.scaleDtype ?? ''} dim ${c.dim} hidden ${c.hidden}${c.maxChunkBytes ? ' split' : ''}` })))(
    '$label',
    async ({ c }) => {
      const { dim, hidden } = c;
      const opts = { scaleDtype: c.scaleDtype, maxChunkBytes: c.maxChunkBytes };
      const wo = randomArray(dim * hidden, 1, 1 / Math.sqrt(hidden));
      const [w1, w3] = [randomArray(hidden * dim, 2, 1 / Math.sqrt(dim)), randomArray(hidden * dim, 3, 1 / Math.sqrt(dim))];
      const producer = uploadWeight(gpu, 'wo', wo, dim, hidden, c.dtype, opts);
      const up1 = uploadWeight(gpu, 'w1', w1, hidden, dim, c.dtype, opts);
      const up3 = uploadWeight(gpu, 'w3', w3, hidden, dim, c.dtype, opts);
      if (c.maxChunkBytes) expect(producer.chunks.length).toBeGreaterThan(1);
      const x0 = randomArray(dim, 4, 2);
      const xin = randomArray(hidden, 5, 1);
      const g = randomArray(dim, 6, 1);
      const gBuf = gpu.storage('g', g);
      const xBuf = gpu.storage('x', x0);
      const xinBuf = gpu.storage('xin', xin);
      const out = gpu.storage('out', hidden * 4);
      const hb = gpu.storage('hb', hidden * 4);
      try {
        const prod = new MatVec(gpu, producer, { kernel: c.kernel });
        expect(prod.canFoldNorm).toBe(true);
        const norm = new FoldedNorm(gpu, 'norm', gBuf, dim, Math.ceil(dim / prod.rowsPerWorkgroup), EPS);
        const add = prod.bind('producer', xinBuf, xBuf, { accumulate: true, normOut: norm });
        const single = new MatVec(gpu, up1, { kernel: c.kernel }).bind('consumer', norm, out);
        const pair = new MatVec(gpu, up1, { kernel: c.kernel }).bind('consumer.swiglu', norm, hb, { up: up3 });
        await gpu.checked('folded norm', () => gpu.run('folded', (pass) => (add.encode(pass), single.encode(pass), pair.encode(pass))));

        // Producer: x += W_o xin, then [g | x * g | partial sums of x^2].
        const x = await gpu.readF32(xBuf);
        const woD = dequantized(wo, dim, hidden, c);
        const bound = absDotBound(woD, xin, dim, hidden);
        expectWithin(x, matvecRef(woD, xin, dim, hidden, x0), (i) => MATVEC_REL_TOL * (bound[i] + Math.abs(x0[i])) * (c.dtype === 'q4' ? 4 : 1) + LINEAR_ABS_TOL, 'x');
        const xn = await gpu.readF32(norm.buffer);
        expect(xn.subarray(0, dim)).toEqual(g);
        expectWithin(xn.subarray(dim, 2 * dim), Array.from(x, (v, i) => v * g[i]), (i) => 2 ** -23 * Math.abs(x[i] * g[i]), 'x * g');
        let ss = 0;
        for (const v of x) ss += v * v;
        const parts = xn.subarray(2 * dim);
        expect(parts.length).toBeGreaterThanOrEqual(norm.parts);
        expect(parts.subarray(norm.parts).every((v) => v === 0)).toBe(true);
        expect(Math.abs(parts.reduce((a, b) => a + b, 0) - ss)).toBeLessThanOrEqual(1e-6 * ss);

        // Consumers, fed the stored x.
        const scale = 1 / Math.sqrt(ss / dim + EPS);
        const xnorm = Array.from(x, (v, i) => v * g[i] * scale);
        const w1D = dequantized(w1, hidden, dim, c);
        const w3D = dequantized(w3, hidden, dim, c);
        const a = matvecRef(w1D, xnorm, hidden, dim);
        const b = matvecRef(w3D, xnorm, hidden, dim);
        const ba = absDotBound(w1D, xnorm, hidden, dim);
        const bb = absDotBound(w3D, xnorm, hidden, dim);
        const q4 = c.dtype === 'q4' ? 4 : 1; // q4 subtracts 8 * scale * sum x per group: larger terms than |W x|
        expectWithin(await gpu.readF32(out), a, (i) => 256 * 2 ** -24 * ba[i] * q4 + 1e-5 * Math.abs(a[i]) + 1e-6, 'W (x * g) / rms');
        const want = swigluRef(a, b);
        expectWithin(await gpu.readF32(hb), want, (i) => (256 * 2 ** -24 * q4 + 1e-5) * (1.1 * Math.abs(b[i]) * ba[i] + Math.abs(a[i]) * bb[i]) + 1e-5 * Math.abs(want[i]) + 1e-6, 'silu(W1 xn) * (W3 xn)');
        norm.buffer.destroy();
      } finally {
        for (const w of [producer, up1, up3]) destroyWeight(w);
        for (const b of [gBuf, xBuf, xinBuf, out, hb]) b.destroy();
      }
    },
    120_000,
  );

  it('refuses folds that cannot work', () => {
    const w = uploadWeight(gpu, 'w', randomArray(64 * 64, 1), 64, 64, 'f32');
    const g = gpu.storage('g', 64 * 4);
    const y = gpu.storage('y', 64 * 4);
    const op = new MatVec(gpu, w);
    const norm = new FoldedNorm(gpu, 'norm', g, 64, Math.ceil(64 / op.rowsPerWorkgroup), EPS);
    expect(() => op.bind('no accumulate', y, y, { normOut: norm })).toThrow(/needs accumulate/);
    expect(() => op.bind('wrong parts', y, y, { accumulate: true, normOut: new FoldedNorm(gpu, 'n2', g, 64, 3, EPS) })).toThrow(KernelShapeError);
    expect(() => new FoldedNorm(gpu, 'odd', g, 60, 15, EPS)).toThrow(/multiple of 64/);
    destroyWeight(w);
  });
});
