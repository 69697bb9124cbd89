// Matrix x vector kernels (shaders/matvec_{f32,f16,q8,q4}.wgsl) against the float64 reference.
// The reference uses the DEQUANTIZED weights (decodeWeights), so the comparison isolates kernel error.
// Tolerance per output row r: MATVEC_REL_TOL * S_r + LINEAR_ABS_TOL (src/reference/linear.ts, where it is argued),
// S_r = sum_c |W[r, c] x[c]|; q4 sums nibble * x and subtracts 8 * sum x per group (q4k/q5k dmin * m * sum x), so
// its S_r adds sum_c 2 * gmax_c * |x[c]| (gmax_c: the largest |W| in c's group, which is 8 * |scale|).
// Quantization error vs the original floats is checked separately: per element at most scale/2 for q8 (plus the
// f16 rounding of the scale) and one scale step for q4 (the largest value of the opposite sign to m clamps).
// SwiftShader (about 10x slower) runs two of the Llama 2 7B shapes; lavapipe runs all four, in several dtypes.
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import { decodeWeights, encodeWeights, QUANT_GROUP, type ScaleDtype, type WeightDtype } from '../../src/formats/quant.ts';
import type { Gpu } from '../../src/gpu/device.ts';
import { lanesKernelFits, lanesKernelRuns } from '../../src/gpu/ops/matmul-lanes.ts';
import { MatVec } from '../../src/gpu/ops/matvec.ts';
import { concatRows, destroyWeight, uploadWeight } from '../../src/gpu/weights.ts';
import { randomArray, testGpus } from '../helpers/gpu.ts';
import { swigluRef } from '../../src/reference/elementwise.ts';
import { describeMismatch, worstMismatch } from '../../src/reference/compare.ts';
import { LINEAR_ABS_TOL, linearBound, MATVEC_REL_TOL, matvecRef, WEIGHT_VARIANTS as VARIANTS } from '../../src/reference/linear.ts';

const gpus = await testGpus();

interface Case {
  rows: number;
  cols: number;
  dtype: WeightDtype;
  scaleDtype?: ScaleDtype;
  accumulate?: boolean;
  /** y starts as random g and the op stores silu(g) * W x (the SwiGLU gate). */
  gate?: boolean;
  /** A second weight U of the same shape: the op stores silu(W x) * (U x) in one dispatch (LinearOutput.up). */
  up?: boolean;
  maxChunkBytes?: number;
  /** Forces a kernel (default: the op's choice, the lanes kernel for q4 on lavapipe). */
  kernel?: 'matvec' | 'lanes';
}


// stories260K (dim 64, hidden 172, vocab 512) and awkward sizes, every dtype, with and without accumulate.
const SMALL: Case[] = VARIANTS.flatMap((v, i) =>
  [
    [64, 64],
    [172, 64],
    [64, 172],
    [512, 64],
    [1000, 1001],
    [3, 37],
    [37, 5],
  ].map(([rows, cols], j) => ({ rows, cols, ...v, accumulate: (i + j) % 2 === 1 })),
);

// q4 through the kernel the adapter does not pick by default for it (lavapipe picks the lanes kernel when cols
// is a multiple of 4; other adapters matvec_q4, and the lanes kernel runs only where subgroups are 8 lanes).
const OTHER_Q4: Case[] = [
  [64, 64],
  [172, 64],
  [64, 172],
  [1000, 1000],
].map(([rows, cols], j) => ({ rows, cols, dtype: 'q4' as const, accumulate: j % 2 === 1 }));

// The SwiGLU gate (y = silu(y) * W x) through every kernel: stories260K's w3 shape and a row-chunked one.
const GATE: Case[] = [
  ...VARIANTS.map((v) => ({ rows: 172, cols: 64, ...v, gate: true })),
  { rows: 1000, cols: 1000, dtype: 'q4', gate: true, maxChunkBytes: 96 * 1024 },
  { rows: 1000, cols: 1000, dtype: 'q4', gate: true, kernel: 'matvec' },
];

// The SwiGLU pair (y = silu(W1 x) * (W3 x) in one dispatch) through every kernel: stories260K's and TinyLlama's w1
// shapes, an odd row count, and a row-chunked one.
const UP: Case[] = [
  ...VARIANTS.map((v) => ({ rows: 172, cols: 64, ...v, up: true })),
  ...VARIANTS.map((v) => ({ rows: 5632, cols: 2048, ...v, up: true })),
  { rows: 37, cols: 100, dtype: 'q4', up: true },
  { rows: 1000, cols: 1000, dtype: 'q4', up: true, maxChunkBytes: 96 * 1024 },
  { rows: 1000, cols: 1000, dtype: 'q4', up: true, kernel: 'matvec' },
];

// Split into row chunks by a small maxChunkBytes (chunks of unequal size: the last one is short).
const SPLIT: Case[] = VARIANTS.map((v, i) => ({ rows: 1000, cols: 1001, ...v, accumulate: i % 2 === 0, maxChunkBytes: 96 * 1024 }));

// ggml's k-quants kept as they are (q4k, q5k, q6k; cols a multiple of 256): accumulate, the SwiGLU gate and pair,
// row chunks, q6k's d as f32.
const KQUANT: Case[] = (['q4k', 'q5k', 'q6k'] as const).flatMap((dtype, i): Case[] => [
  { rows: 64, cols: 256, dtype },
  { rows: 37, cols: 768, dtype, accumulate: true },
  { rows: 172, cols: 512, dtype, gate: true },
  { rows: 100, cols: 512, dtype, up: true },
  { rows: 1000, cols: 1024, dtype, accumulate: i % 2 === 0, maxChunkBytes: 96 * 1024 },
]).concat([
  { rows: 64, cols: 256, dtype: 'q6k', scaleDtype: 'f32', accumulate: true },
  // q4k, q5k and q6k through matvec_q45k and matvec_q6k where the lanes kernels are the default (lavapipe).
  ...(['q4k', 'q5k', 'q6k'] as const).flatMap((dtype): Case[] => [
    { rows: 37, cols: 768, dtype, accumulate: true, kernel: 'matvec' },
    { rows: 100, cols: 512, dtype, up: true, kernel: 'matvec' },
    { rows: 172, cols: 512, dtype, gate: true, kernel: 'matvec' },
  ]),
]);

const LLAMA7B_ALL: Case[] = [
  { rows: 4096, cols: 4096, dtype: 'q4' },
  { rows: 11008, cols: 4096, dtype: 'q4' },
  { rows: 4096, cols: 11008, dtype: 'q4', accumulate: true },
  { rows: 32000, cols: 4096, dtype: 'q4' },
  { rows: 4096, cols: 4096, dtype: 'q4', scaleDtype: 'f32' },
  { rows: 4096, cols: 11008, dtype: 'q8', accumulate: true },
  { rows: 11008, cols: 4096, dtype: 'f16' },
  { rows: 4096, cols: 4096, dtype: 'f32', accumulate: true },
  { rows: 4096, cols: 4096, dtype: 'q4k' },
  { rows: 11008, cols: 4096, dtype: 'q5k' },
  { rows: 4096, cols: 11008, dtype: 'q6k', accumulate: true },
];
const LLAMA7B_FEW: Case[] = [
  { rows: 4096, cols: 4096, dtype: 'q4' },
  { rows: 4096, cols: 11008, dtype: 'f16', accumulate: true },
  { rows: 4096, cols: 4096, dtype: 'q4k' },
];

/** Dequantized weights as the kernel sees them: encode then decode row-independent encodings. */
function dequantized(values: Float32Array, c: Case): Float32Array {
  if (c.dtype === 'f32') return values;
  return decodeWeights(encodeWeights(values, c.rows, c.cols, c.dtype, c.scaleDtype), c.rows, c.cols, c.dtype, c.scaleDtype);
}

function expectWithinBound(got: Float32Array, want: Float64Array, bound: Float64Array, what: string): void {
  const m = worstMismatch(got, want, (i) => MATVEC_REL_TOL * bound[i] + LINEAR_ABS_TOL);
  if (m) throw new Error(describeMismatch(`${what}: row`, m));
}

async function check(gpu: Gpu, c: Case, seed: number): Promise<void> {
  const values = randomArray(c.rows * c.cols, seed, 1 / Math.sqrt(c.cols));
  const x = randomArray(c.cols, seed + 1, 1);
  const y0 = randomArray(c.rows, seed + 2, 1);
  const weight = uploadWeight(gpu, 'w', values, c.rows, c.cols, c.dtype, { scaleDtype: c.scaleDtype, maxChunkBytes: c.maxChunkBytes });
  if (c.maxChunkBytes) expect(weight.chunks.length).toBeGreaterThan(2);
  const upValues = c.up ? randomArray(c.rows * c.cols, seed + 3, 1 / Math.sqrt(c.cols)) : undefined;
  const up = upValues ? uploadWeight(gpu, 'u', upValues, c.rows, c.cols, c.dtype, { scaleDtype: c.scaleDtype, maxChunkBytes: c.maxChunkBytes }) : undefined;
  const xb = gpu.storage('x', x);
  const yb = gpu.storage('y', c.accumulate || c.gate ? y0 : new Float32Array(c.rows).fill(Number.NaN));
  try {
    const op = new MatVec(gpu, weight, { kernel: c.kernel }).bind('matvec.test', xb, yb, { accumulate: c.accumulate, gate: c.gate, up });
    await gpu.run('matvec', (pass) => op.encode(pass));
    const got = await gpu.readF32(yb);
    const w = dequantized(values, c);
    let want = matvecRef(w, x, c.rows, c.cols, c.accumulate ? y0 : undefined);
    const bound = linearBound(w, x, c.rows, c.cols, c.dtype, c.accumulate ? y0 : undefined);
    if (upValues) {
      // silu(a) * b: each factor's error scaled by the other (silu' is within [-0.1, 1.1]), plus f32 exp's few ulps.
      const u = dequantized(upValues, c);
      const b = matvecRef(u, x, c.rows, c.cols);
      const upBound = linearBound(u, x, c.rows, c.cols, c.dtype);
      const a = want;
      want = swigluRef(a, b);
      for (let r = 0; r < c.rows; r++) bound[r] = 1.1 * Math.abs(b[r]) * bound[r] + Math.abs(swigluRef([a[r]], [1])[0]) * upBound[r] + Math.abs(want[r]);
    }
    if (c.gate) {
      // silu(g) scales the product's error; f32 exp adds a few ulps relative (|want| at rel 2^-16 covers them).
      want = swigluRef(y0, want);
      for (let r = 0; r < c.rows; r++) bound[r] = bound[r] * Math.abs(swigluRef([y0[r]], [1])[0]) + Math.abs(want[r]);
    }
    expectWithinBound(got, want, bound, `matvec ${c.dtype} [${c.rows}, ${c.cols}]`);
  } finally {
    destroyWeight(weight);
    if (up) destroyWeight(up);
    xb.destroy();
    yb.destroy();
  }
}

const name = (c: Case) =>
  `${c.kernel ? `${c.kernel} ` : ''}${c.dtype}${c.scaleDtype ? `/${c.scaleDtype}` : ''} [${c.rows}, ${c.cols}]${c.accumulate ? ' accumulate' : ''}${c.gate ? ' gate' : ''}${c.up ? ' swiglu' : ''}${c.maxChunkBytes ? ' split' : ''}`;

describe.each(gpus)('matvec on $name', ({ name: adapter, gpu }) => {
  const big = adapter === 'llvmpipe' ? LLAMA7B_ALL : LLAMA7B_FEW;
  const lanes = lanesKernelRuns(gpu, { name: 'probe', dtype: 'q4', rows: 1, cols: 4, scaleDtype: 'f16', chunks: [] });
  const other: Case[] = OTHER_Q4.flatMap((c) => [{ ...c, kernel: 'matvec' as const }, ...(lanes ? [{ ...c, kernel: 'lanes' as const }] : [])]);
  // q4 runs the lanes kernel by default on lavapipe (cols a multiple of 4) and matvec_q4 where forced.
  const up = adapter === 'llvmpipe' ? UP : UP.filter((c) => c.rows < 5000);
  it.each([...SMALL, ...SPLIT, ...other, ...GATE, ...up, ...KQUANT].map((c) => ({ c, label: name(c) })))('$label', async ({ c }) => {
    await check(gpu, c, c.rows * 31 + c.cols);
  });
  it.each(big.map((c) => ({ c, label: name(c) })))('llama2-7b $label', async ({ c }) => {
    await check(gpu, c, c.rows + c.cols);
  });

  it('runs q4 through the lanes kernel on CPU adapters with 8-lane subgroups (lavapipe), matvec_q4 elsewhere', () => {
    const w = uploadWeight(gpu, 'wq', randomArray(64 * 64, 1), 64, 64, 'q4');
    const odd = uploadWeight(gpu, 'wodd', randomArray(8 * 6, 1), 8, 6, 'q4');
    const f16 = uploadWeight(gpu, 'wf16', randomArray(64 * 64, 1), 64, 64, 'f16');
    try {
      expect(new MatVec(gpu, w).kernel).toBe(lanesKernelFits(gpu, w) ? 'lanes' : 'matvec');
      if (adapter === 'llvmpipe') expect(new MatVec(gpu, w).kernel).toBe('lanes');
      expect(new MatVec(gpu, odd).kernel).toBe('matvec');
      expect(new MatVec(gpu, f16).kernel).toBe('matvec');
      expect(() => new MatVec(gpu, f16, { kernel: 'lanes' })).toThrow(KernelShapeError);
      if (!lanes) expect(() => new MatVec(gpu, w, { kernel: 'lanes' })).toThrow(/8-lane subgroups/);
    } finally {
      for (const x of [w, odd, f16]) destroyWeight(x);
    }
  });

  // wq, wk and wv joined by concatRows (the model's qkv), written at an offset inside wider y rows.
  it.each([
    ...VARIANTS.map((v) => ({ ...v, rows: [64, 32, 32], cols: 64, merged: true, maxChunkBytes: undefined })),
    ...VARIANTS.map((v) => ({ ...v, rows: [300, 100, 100], cols: 1000, merged: true, maxChunkBytes: 96 * 1024 })),
    // f16 rows of odd length end mid-word: the parts' chunks stay apart, one dispatch each.
    { dtype: 'f16' as const, scaleDtype: undefined, rows: [3, 5, 5], cols: 37, merged: false, maxChunkBytes: undefined },
  ])('concatRows $dtype/$scaleDtype $rows x $cols', async ({ dtype, scaleDtype, rows, cols, merged, maxChunkBytes }) => {
    const values = rows.map((r, i) => randomArray(r * cols, 40 + i, 1 / Math.sqrt(cols)));
    const parts = rows.map((r, i) => uploadWeight(gpu, `w${i}`, values[i], r, cols, dtype, { scaleDtype, maxChunkBytes }));
    const chunksBefore = parts.reduce((a, p) => a + p.chunks.length, 0);
    const joined = concatRows(gpu, 'wqkv', parts)!;
    const total = rows.reduce((a, b) => a + b, 0);
    expect(joined.rows).toBe(total);
    expect(joined.chunks.length).toBe(merged ? 1 : chunksBefore);
    const x = randomArray(cols, 50, 1);
    const offset = 8;
    const stride = total + 12;
    const xb = gpu.storage('x', x);
    const yb = gpu.storage('y', new Float32Array(stride).fill(7));
    try {
      const op = new MatVec(gpu, joined).bind('concat.test', xb, yb, { rowOffset: offset, yStride: stride });
      await gpu.run('matvec', (pass) => op.encode(pass));
      const got = await gpu.readF32(yb);
      const w = new Float32Array(total * cols);
      let at = 0;
      rows.forEach((r, i) => {
        w.set(dequantized(values[i], { rows: r, cols, dtype, scaleDtype }), at);
        at += r * cols;
      });
      const bound = linearBound(w, x, total, cols, dtype);
      expectWithinBound(got.subarray(offset, offset + total), matvecRef(w, x, total, cols), bound, `concatRows ${dtype}`);
      expect([...got.subarray(0, offset), ...got.subarray(offset + total)].every((v) => v === 7)).toBe(true);
      expect(() => new MatVec(gpu, joined).bind('concat.narrow', xb, yb, { rowOffset: 13, yStride: stride })).toThrow(KernelShapeError);
    } finally {
      destroyWeight(joined);
      xb.destroy();
      yb.destroy();
    }
    expect(concatRows(gpu, 'mixed', [uploadWeight(gpu, 'a', values[0], rows[0], cols, 'f32'), uploadWeight(gpu, 'b', values[1], rows[1], cols, 'q8')])).toBeNull();
  });

  it('rejects bad shapes when built or bound', () => {
    const w = uploadWeight(gpu, 'wq', randomArray(64 * 64, 1), 64, 64, 'q4');
    const small = gpu.storage('small', 32 * 4);
    const ok = gpu.storage('ok', 64 * 4);
    expect(() => new MatVec(gpu, w).bind('x too small', small, ok)).toThrow(KernelShapeError);
    expect(() => new MatVec(gpu, w).bind('y too small', ok, small)).toThrow(KernelShapeError);
    expect(() => new MatVec(gpu, { ...w, rows: 0 })).toThrow(KernelShapeError);
    expect(() => new MatVec(gpu, { ...w, cols: 0 })).toThrow(KernelShapeError);
    expect(() => new MatVec(gpu, { ...w, rows: 65 })).toThrow(/chunks cover 64 rows/);
    expect(() => new MatVec(gpu, { ...w, chunks: [] })).toThrow(KernelShapeError);
    expect(() => new MatVec(gpu, { ...w, chunks: [{ ...w.chunks[0], scales: undefined }] })).toThrow(/lacks scales/);
    expect(() => uploadWeight(gpu, 'w', new Float32Array(10), 3, 4, 'f32')).toThrow(KernelShapeError);
    expect(() => uploadWeight(gpu, 'w', new Float32Array(0), 0, 4, 'f32')).toThrow(KernelShapeError);
    expect(() => uploadWeight(gpu, 'w', new Float32Array(4096), 1, 4096, 'f32', { maxChunkBytes: 1024 })).toThrow(/one row/);
    destroyWeight(w);
  });
});

describe('quantization error vs the original floats', () => {
  it.each([
    { dtype: 'q8' as const, scaleDtype: 'f16' as const },
    { dtype: 'q8' as const, scaleDtype: 'f32' as const },
    { dtype: 'q4' as const, scaleDtype: 'f16' as const },
    { dtype: 'q4' as const, scaleDtype: 'f32' as const },
  ])('$dtype with $scaleDtype scales', ({ dtype, scaleDtype }) => {
    const rows = 64;
    const cols = 172;
    const values = randomArray(rows * cols, 7, 0.5);
    const deq = decodeWeights(encodeWeights(values, rows, cols, dtype, scaleDtype), rows, cols, dtype, scaleDtype);
    // f16 scales are within a relative 2^-11 of the exact scale; the clamped q8 end loses at most that much too.
    const slack = scaleDtype === 'f16' ? 2 ** -11 : 2 ** -23;
    let worstSeen = 0;
    for (let r = 0; r < rows; r++) {
      for (let g = 0; g * QUANT_GROUP < cols; g++) {
        const start = r * cols + g * QUANT_GROUP;
        const end = Math.min(start + QUANT_GROUP, (r + 1) * cols);
        let amax = 0;
        for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(values[i]));
        // q8: half a step of amax/127; q4: one step of amax/8 (the value opposite in sign to m may clamp).
        const bound = dtype === 'q8' ? (amax / 127) * (0.5 + slack * 128) : (amax / 8) * (1 + slack * 16);
        for (let i = start; i < end; i++) {
          const err = Math.abs(deq[i] - values[i]);
          worstSeen = Math.max(worstSeen, err / bound);
          expect(err).toBeLessThanOrEqual(bound);
        }
      }
    }
    expect(worstSeen).toBeGreaterThan(0.1); // the bound is not vacuous: some errors come close to it
  });
});
