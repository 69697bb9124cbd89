// Matrix x matrix kernel (shaders/matmul.wgsl, every dtype) against the float64 reference on the DEQUANTIZED
// weights, so the comparison isolates kernel error from quantization error (checked in matvec.test.ts).
// Three kernels run: the tiled one (the default), the per-token matvec path (cols a multiple of 4) and the lanes
// kernel (q4 on CPU adapters with 8-lane subgroups, lavapipe's default for q4; shaders/matmul_lanes_q4.wgsl).
// Tolerance per output Y[t, r]: matmulRelTol(cols) * S + LINEAR_ABS_TOL (src/reference/linear.ts), S = sum_c
// |W[r, c] X[t, c]| (plus |y| when accumulating; for q4/q4k/q5k also sum_c 2 * gmax_c |X[t, c]|: linearBound).
// SwiftShader (about 10x slower) runs one Llama 2 7B shape; lavapipe runs three.
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import { decodeWeights, encodeWeights, type ScaleDtype, type WeightDtype } from '../../src/formats/quant.ts';
import type { Gpu } from '../../src/gpu/device.ts';
import { MatMul } from '../../src/gpu/ops/matmul.ts';
import { lanesKernelFits, lanesKernelRuns } from '../../src/gpu/ops/matmul-lanes.ts';
import { destroyWeight, uploadWeight } from '../../src/gpu/weights.ts';
import { randomArray, testGpus } from '../helpers/gpu.ts';
import { swigluRef } from '../../src/reference/elementwise.ts';
import { LINEAR_ABS_TOL, linearBound, matmulRef, matmulRelTol, WEIGHT_VARIANTS as VARIANTS } from '../../src/reference/linear.ts';

const gpus = await testGpus();

interface Case {
  rows: number;
  cols: number;
  n: number;
  dtype: WeightDtype;
  scaleDtype?: ScaleDtype;
  accumulate?: boolean;
  /** Y starts as random G and the op stores silu(G) * X W^T (the SwiGLU gate). */
  gate?: boolean;
  maxChunkBytes?: number;
  /** Tokens the op is built for (default n); larger than n checks only n rows are touched. */
  maxTokens?: number;
  /** Forces a kernel: tiled, per-token matvec or lanes (default: the adapter's choice). */
  kernel?: 'tiled' | 'matvec' | 'lanes';
}


// stories260K shapes, awkward sizes and n = 1, 7, 64, 130 across every dtype.
const SMALL: Case[] = (['tiled', 'matvec'] as const).flatMap((kernel) => VARIANTS.flatMap((v, i) =>
  [
    { rows: 64, cols: 64, n: 1 },
    { rows: 172, cols: 64, n: 7, maxTokens: 40 },
    { rows: 64, cols: 172, n: 64 },
    { rows: 512, cols: 64, n: 130 },
    { rows: 1000, cols: 1001, n: 7 },
    { rows: 3, cols: 37, n: 33 },
  ]
    .filter((s) => kernel === 'tiled' || s.cols % 4 === 0)
    .map((s, j) => ({ ...s, ...v, kernel, accumulate: (i + j) % 2 === 1 })),
));
const SPLIT: Case[] = VARIANTS.flatMap((v, i) => [
  { rows: 1000, cols: 1001, n: 35, ...v, accumulate: i % 2 === 0, maxChunkBytes: 96 * 1024 },
  { rows: 1000, cols: 1000, n: 35, ...v, accumulate: i % 2 === 1, maxChunkBytes: 96 * 1024, kernel: 'matvec' as const },
]);

// The lanes kernel (q4, cols a multiple of 4; where subgroups are 8 lanes): token counts around its 16 tokens per
// invocation, row counts around its 64 rows per workgroup, split weights, both scale encodings.
const LANES: Case[] = (['f16', 'f32'] as const).flatMap((scaleDtype, i) =>
  [
    { rows: 64, cols: 64, n: 1 },
    { rows: 172, cols: 64, n: 7, maxTokens: 40 },
    { rows: 64, cols: 172, n: 64 },
    { rows: 17, cols: 36, n: 9, maxTokens: 9 },
    { rows: 65, cols: 96, n: 33 },
    { rows: 512, cols: 64, n: 130 },
    { rows: 1000, cols: 1000, n: 35, maxChunkBytes: 96 * 1024 },
  ].map((s, j) => ({ ...s, dtype: 'q4' as const, scaleDtype, kernel: 'lanes' as const, accumulate: (i + j) % 2 === 1 })),
);

// ggml's k-quants (cols a multiple of 256) through the tiled, per-token matvec and (where they run) lanes kernels:
// token counts around the tiles and the lanes kernel's 16 tokens, split weights, the gate.
const KQUANT: Case[] = (['q4k', 'q5k', 'q6k'] as const).flatMap((dtype, i) =>
  (['tiled', 'matvec', 'lanes'] as const).flatMap((kernel, j): Case[] => [
    { rows: 64, cols: 256, n: 1, dtype, kernel },
    { rows: 100, cols: 512, n: 33, maxTokens: 40, dtype, kernel, accumulate: (i + j) % 2 === 0 },
    { rows: 1000, cols: 1024, n: 17, dtype, kernel, accumulate: (i + j) % 2 === 1, maxChunkBytes: 96 * 1024 },
    { rows: 172, cols: 256, n: 9, dtype, kernel, gate: true },
  ]),
).concat([{ rows: 64, cols: 256, n: 5, dtype: 'q6k', scaleDtype: 'f32', kernel: 'tiled' }]);

// The SwiGLU gate through each kernel, at stories260K's w3 shape.
const GATE: Case[] = (['tiled', 'matvec', 'lanes'] as const).flatMap((kernel) => [
  { rows: 172, cols: 64, n: 9, dtype: 'q4' as const, kernel, gate: true },
  { rows: 172, cols: 64, n: 9, dtype: 'f16' as const, kernel, gate: true },
]).filter((c) => c.kernel !== 'lanes' || c.dtype === 'q4');

const LLAMA7B_ALL: Case[] = [
  { rows: 4096, cols: 4096, n: 16, dtype: 'q4', kernel: 'lanes' },
  { rows: 4096, cols: 11008, n: 9, dtype: 'q4', accumulate: true, kernel: 'lanes' },
  { rows: 4096, cols: 4096, n: 16, dtype: 'q4', kernel: 'tiled' },
  { rows: 4096, cols: 4096, n: 16, dtype: 'q4', kernel: 'matvec' },
  { rows: 11008, cols: 4096, n: 7, dtype: 'q8', kernel: 'tiled' },
  { rows: 4096, cols: 11008, n: 7, dtype: 'f16', accumulate: true, kernel: 'tiled' },
  { rows: 4096, cols: 11008, n: 7, dtype: 'f16', accumulate: true, kernel: 'matvec' },
  { rows: 4096, cols: 4096, n: 16, dtype: 'q4k', kernel: 'lanes' },
  { rows: 4096, cols: 11008, n: 7, dtype: 'q6k', accumulate: true, kernel: 'matvec' },
  { rows: 4096, cols: 11008, n: 16, dtype: 'q6k', accumulate: true, kernel: 'lanes' },
  { rows: 4096, cols: 4096, n: 7, dtype: 'q5k', kernel: 'tiled' },
];
const LLAMA7B_FEW: Case[] = [
  { rows: 4096, cols: 4096, n: 7, dtype: 'q4', kernel: 'tiled' },
  { rows: 4096, cols: 4096, n: 7, dtype: 'q4', kernel: 'matvec' },
  { rows: 4096, cols: 4096, n: 7, dtype: 'q4k', kernel: 'tiled' },
];

function dequantized(values: Float32Array, c: Case): Float32Array {
  if (c.dtype === 'f32') return values;
  return decodeWeights(encodeWeights(values, c.rows, c.cols, c.dtype, c.scaleDtype), c.rows, c.cols, c.dtype, c.scaleDtype);
}

async function check(gpu: Gpu, c: Case, seed: number): Promise<void> {
  const maxTokens = c.maxTokens ?? c.n;
  const values = randomArray(c.rows * c.cols, seed, 1 / Math.sqrt(c.cols));
  const x = randomArray(maxTokens * c.cols, seed + 1, 1);
  const y0 = randomArray(maxTokens * c.rows, seed + 2, 1);
  const weight = uploadWeight(gpu, 'w', values, c.rows, c.cols, c.dtype, { scaleDtype: c.scaleDtype, maxChunkBytes: c.maxChunkBytes });
  if (c.maxChunkBytes) expect(weight.chunks.length).toBeGreaterThan(2);
  const xb = gpu.storage('x', x);
  // Without accumulate, y starts as NaN so any output the kernel fails to write shows up.
  const yInit = c.accumulate || c.gate ? y0 : new Float32Array(maxTokens * c.rows).fill(Number.NaN);
  const yb = gpu.storage('y', yInit);
  try {
    const op = new MatMul(gpu, weight, maxTokens, { kernel: c.kernel }).bind('matmul.test', xb, yb, { accumulate: c.accumulate, gate: c.gate });
    await gpu.run('matmul', (pass) => op.encode(pass, c.n));
    const got = await gpu.readF32(yb);
    const w = dequantized(values, c);
    const plain = matmulRef(w, x, c.n, c.rows, c.cols, c.accumulate ? y0 : undefined);
    const gain = c.gate ? swigluRef(y0, new Float64Array(y0.length).fill(1)) : undefined; // silu(G)
    const want = gain ? plain.map((v, i) => gain[i] * v) : plain;
    let worst = 0;
    let worstAt = -1;
    const rel = matmulRelTol(c.cols);
    for (let t = 0; t < c.n; t++) {
      const xt = x.subarray(t * c.cols, (t + 1) * c.cols);
      const bound = linearBound(w, xt, c.rows, c.cols, c.dtype, c.accumulate ? y0.subarray(t * c.rows, (t + 1) * c.rows) : undefined);
      for (let r = 0; r < c.rows; r++) {
        const s = bound[r];
        const i = t * c.rows + r;
        // The gate: silu(G) scales the product's error; f32 exp adds a few ulps relative (2^-16 |want| covers them).
        const tol = gain ? Math.abs(gain[i]) * rel * s + 2 ** -16 * Math.abs(want[i]) : rel * s;
        const ratio = Math.abs(got[i] - want[i]) / (tol + LINEAR_ABS_TOL);
        if (!(ratio <= worst)) {
          worst = Number.isNaN(ratio) ? Infinity : ratio;
          worstAt = i;
        }
      }
    }
    if (worst > 1) {
      throw new Error(`matmul ${c.dtype} [${c.rows}, ${c.cols}] n=${c.n}: Y[${worstAt}] is ${got[worstAt]}, expected ${want[worstAt]} (${worst.toFixed(2)}x the tolerance)`);
    }
    // Rows past n are left as they were.
    for (let i = c.n * c.rows; i < maxTokens * c.rows; i++) expect(Object.is(got[i], yInit[i])).toBe(true);
  } finally {
    destroyWeight(weight);
    xb.destroy();
    yb.destroy();
  }
}

const name = (c: Case) =>
  `${c.kernel ?? 'default'} ${c.dtype}${c.scaleDtype ? `/${c.scaleDtype}` : ''} [${c.rows}, ${c.cols}] n=${c.n}${c.accumulate ? ' accumulate' : ''}${c.gate ? ' gate' : ''}${c.maxChunkBytes ? ' split' : ''}`;

describe.each(gpus)('matmul on $name', ({ name: adapter, gpu }) => {
  const lanes = lanesKernelRuns(gpu, { name: 'probe', dtype: 'q4', rows: 1, cols: 4, scaleDtype: 'f16', chunks: [] });
  const big = (adapter === 'llvmpipe' ? LLAMA7B_ALL : LLAMA7B_FEW).filter((c) => lanes || c.kernel !== 'lanes');
  const kquant = KQUANT.filter((c) => lanes || c.kernel !== 'lanes');
  it.each([...SMALL, ...SPLIT, ...(lanes ? LANES : []), ...GATE.filter((c) => lanes || c.kernel !== 'lanes'), ...kquant].map((c) => ({ c, label: name(c) })))('$label', async ({ c }) => {
    await check(gpu, c, c.rows * 17 + c.cols + c.n);
  });
  it.each(big.map((c) => ({ c, label: name(c) })))('llama2-7b $label', async ({ c }) => {
    await check(gpu, c, c.rows + c.cols + c.n);
  });

  it('runs q4 prefill through the lanes kernel on CPU adapters with 8-lane subgroups (lavapipe)', () => {
    const w = uploadWeight(gpu, 'w', randomArray(64 * 64, 1), 64, 64, 'q4');
    try {
      expect(new MatMul(gpu, w, 16).kernel).toBe(lanesKernelFits(gpu, w) ? 'lanes' : adapter === 'llvmpipe' ? 'matvec' : 'tiled');
      if (adapter === 'llvmpipe') expect(new MatMul(gpu, w, 16).kernel).toBe('lanes');
      if (!lanes) expect(() => new MatMul(gpu, w, 16, { kernel: 'lanes' })).toThrow(/8-lane subgroups/);
    } finally {
      destroyWeight(w);
    }
  });

  // The SwiGLU pair in one dispatch (LinearOutput.up: Y = silu(X W1^T) * (X W3^T)) through the kernels that have it.
  const pairKernels: ('matvec' | 'lanes')[] = lanes ? ['matvec', 'lanes'] : ['matvec'];
  const pairs: Case[] = [
    ...pairKernels.flatMap((kernel) => [
      { rows: 172, cols: 64, n: 9, dtype: 'q4' as const, kernel },
      { rows: 1000, cols: 1000, n: 35, dtype: 'q4' as const, kernel, maxChunkBytes: 96 * 1024 },
    ]),
    { rows: 172, cols: 64, n: 9, dtype: 'f16' as const, kernel: 'matvec' as const },
    ...(adapter === 'llvmpipe' ? [{ rows: 5632, cols: 2048, n: 16, dtype: 'q4' as const, kernel: 'lanes' as const }] : []),
  ];
  it.each(pairs.map((c) => ({ c, label: name(c) })))('swiglu $label', async ({ c }) => {
    const seed = c.rows + c.cols;
    const [v1, v3] = [randomArray(c.rows * c.cols, seed, 1 / Math.sqrt(c.cols)), randomArray(c.rows * c.cols, seed + 1, 1 / Math.sqrt(c.cols))];
    const x = randomArray(c.n * c.cols, seed + 2, 1);
    const opts = { maxChunkBytes: c.maxChunkBytes };
    const [w1, w3] = [uploadWeight(gpu, 'w1', v1, c.rows, c.cols, c.dtype, opts), uploadWeight(gpu, 'w3', v3, c.rows, c.cols, c.dtype, opts)];
    const xb = gpu.storage('x', x);
    const yb = gpu.storage('y', new Float32Array(c.n * c.rows).fill(Number.NaN));
    try {
      const op = new MatMul(gpu, w1, c.n, { kernel: c.kernel });
      expect(op.swiglu).toBe(true);
      const bound = op.bind('matmul.swiglu', xb, yb, { up: w3 });
      await gpu.run('matmul.swiglu', (pass) => bound.encode(pass, c.n));
      const got = await gpu.readF32(yb);
      const [d1, d3] = [dequantized(v1, c), dequantized(v3, c)];
      const a = matmulRef(d1, x, c.n, c.rows, c.cols);
      const b = matmulRef(d3, x, c.n, c.rows, c.cols);
      const want = swigluRef(a, b);
      for (let t = 0; t < c.n; t++) {
        for (let r = 0; r < c.rows; r++) {
          let s1 = 0;
          let s3 = 0;
          for (let k = 0; k < c.cols; k++) {
            // |W| plus, for q4, twice its group's largest |W| (the subtracted 8 * scale * sum x), as above.
            const xk = Math.abs(x[t * c.cols + k]);
            s1 += 3 * Math.abs(d1[r * c.cols + k]) * xk;
            s3 += 3 * Math.abs(d3[r * c.cols + k]) * xk;
          }
          const i = t * c.rows + r;
          const q4 = c.dtype === 'q4' ? 8 : 1;
          const tol = matmulRelTol(c.cols) * q4 * (1.1 * Math.abs(b[i]) * s1 + Math.abs(swigluRef([a[i]], [1])[0]) * s3) + 2 ** -16 * Math.abs(want[i]) + LINEAR_ABS_TOL;
          if (!(Math.abs(got[i] - want[i]) <= tol)) throw new Error(`swiglu Y[${t}, ${r}] is ${got[i]}, expected ${want[i]} (tolerance ${tol})`);
        }
      }
    } finally {
      destroyWeight(w1);
      destroyWeight(w3);
      xb.destroy();
      yb.destroy();
    }
  });

  it('the tiled kernel has no SwiGLU pair: W1 and W3 run apart', () => {
    const w = uploadWeight(gpu, 'w', randomArray(64 * 64, 1), 64, 64, 'q4');
    try {
      const op = new MatMul(gpu, w, 4, { kernel: 'tiled' });
      expect(op.swiglu).toBe(false);
      expect(() => op.bind('tiled.swiglu', gpu.storage('x', 4 * 64 * 4), gpu.storage('y', 4 * 64 * 4), { up: w })).toThrow(KernelShapeError);
    } finally {
      destroyWeight(w);
    }
  });

  it('rejects bad shapes when built, bound or encoded', async () => {
    const w = uploadWeight(gpu, 'w1', randomArray(172 * 64, 3), 172, 64, 'q8');
    const x = gpu.storage('x', 4 * 64 * 4);
    const y = gpu.storage('y', 4 * 172 * 4);
    expect(() => new MatMul(gpu, w, 0)).toThrow(KernelShapeError);
    expect(() => new MatMul(gpu, { ...w, cols: 0 }, 4)).toThrow(KernelShapeError);
    expect(() => new MatMul(gpu, { ...w, rows: 100 }, 4)).toThrow(KernelShapeError);
    expect(() => new MatMul(gpu, w, 5).bind('x too small', x, y)).toThrow(/x \(x\) holds/);
    expect(() => new MatMul(gpu, w, 4).bind('y too small', x, x)).toThrow(/y \(x\) holds/);
    const op = new MatMul(gpu, w, 4).bind('ok', x, y);
    await expect(gpu.run('too many tokens', (pass) => op.encode(pass, 5))).rejects.toThrow(KernelShapeError);
    destroyWeight(w);
  });
});
