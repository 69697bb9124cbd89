/**
 * Float64 references for the linear-algebra kernels: matrix x vector, matrix x matrix and embedding lookup.
 * W is the dequantized weight (decodeWeights), so a comparison measures kernel error alone.
 */
import type { ScaleDtype, WeightDtype } from '../formats/quant.ts';

/** y[r] = sum_c W[r, c] * x[c] (+ y0[r] when given). W [rows, cols], x [cols]. */
export function matvecRef(w: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number, y0?: ArrayLike<number>): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = y0 ? y0[r] : 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += w[base + c] * x[c];
    y[r] = s;
  }
  return y;
}

/** Y[t, r] = sum_c W[r, c] * X[t, c] (+ Y0[t, r] when given). W [rows, cols], X [n, cols], Y [n, rows]. */
export function matmulRef(
  w: ArrayLike<number>,
  x: ArrayLike<number>,
  n: number,
  rows: number,
  cols: number,
  y0?: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(n * rows);
  for (let t = 0; t < n; t++) {
    for (let r = 0; r < rows; r++) {
      let s = y0 ? y0[t * rows + r] : 0;
      const wb = r * cols;
      const xb = t * cols;
      for (let c = 0; c < cols; c++) s += w[wb + c] * x[xb + c];
      y[t * rows + r] = s;
    }
  }
  return y;
}

/** out[t, :] = table[tokens[t], :]. table [vocab, dim]. */
export function embeddingRef(table: ArrayLike<number>, tokens: ArrayLike<number>, dim: number): Float64Array {
  const out = new Float64Array(tokens.length * dim);
  for (let t = 0; t < tokens.length; t++) {
    for (let i = 0; i < dim; i++) out[t * dim + i] = table[tokens[t] * dim + i];
  }
  return out;
}

/**
 * Bound on |sum_c W[r, c] x[c] - float32 result| per row: sum_c |W[r, c] x[c]| times `eps` (f32 accumulation in
 * any order of up to cols terms has error <= cols * 2^-24 * sum |terms|; eps is chosen by the test).
 */
export function absDotBound(w: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.abs(w[r * cols + c] * x[c]);
    out[r] = s;
  }
  return out;
}

/** The encodings whose kernels subtract a term times sum x per group: q4 (8 * scale), q4k and q5k (dmin * m). */
export function subtractsSum(dtype: WeightDtype): boolean {
  return dtype === 'q4' || dtype === 'q4k' || dtype === 'q5k';
}

/**
 * bound[r] += sum_c 2 * max_{c' in group(c)} |W[r, c']| * |x[c]|: the q4 kernel's subtracted 8 * scale * sum x, and
 * q4k/q5k's dmin * m * sum x (at most the largest |W| of the sub-block of 32 plus a step, which the factor 2 covers).
 */
export function addGroupMaxBound(bound: Float64Array, w: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < cols; g += 32) {
      let gmax = 0;
      let xs = 0;
      for (let c = g; c < Math.min(g + 32, cols); c++) {
        gmax = Math.max(gmax, Math.abs(w[r * cols + c]));
        xs += Math.abs(x[c]);
      }
      bound[r] += 2 * gmax * xs;
    }
  }
}

/**
 * S_r, the magnitude a row's f32 rounding error scales with: sum_c |W[r, c] x[c]| (absDotBound), plus for the
 * encodings that subtract a per-group sum (subtractsSum) sum_c 2 * gmax_c * |x[c]| (addGroupMaxBound), plus |y0[r]|
 * when the kernel accumulates into y0.
 */
export function linearBound(
  w: ArrayLike<number>,
  x: ArrayLike<number>,
  rows: number,
  cols: number,
  dtype: WeightDtype,
  y0?: ArrayLike<number>,
): Float64Array {
  const bound = absDotBound(w, x, rows, cols);
  if (subtractsSum(dtype)) addGroupMaxBound(bound, w, x, rows, cols);
  if (y0) for (let r = 0; r < rows; r++) bound[r] += Math.abs(y0[r]);
  return bound;
}

/**
 * Matrix x vector tolerance per output row: |got - want| <= MATVEC_REL_TOL * S_r + LINEAR_ABS_TOL (S_r: linearBound).
 * Every product passes through at most 256 f32 additions (per thread cols / (4 WG) blocks for f32/f16 or cols /
 * (32 WG) groups of 32 for the quantized encodings, then WG partial sums; WG >= 16, cols <= 11008), the worst-case
 * bound of recursive summation.
 */
export const MATVEC_REL_TOL = 256 * 2 ** -24;

/**
 * Matrix x matrix tolerance per output Y[t, r]: |got - want| <= matmulRelTol(cols) * S + LINEAR_ABS_TOL, S the
 * linearBound of row r against X[t]: the tiled kernel sums cols products in sequence, the per-token matvec path
 * fewer (the worst-case bound of recursive summation).
 */
export function matmulRelTol(cols: number): number {
  return 2 ** -24 * (cols + 2);
}

/** Absolute slack of the linear kernels' tolerances, for outputs near zero. */
export const LINEAR_ABS_TOL = 1e-6;

/** Embedding rows: f32 and f16 rows copy exactly; quantized ones round q * scale once in f32 (2^-23 relative). */
export const EMBEDDING_TOL = { atol: 0, rtol: 2 ** -23 };

/** Every weight encoding the linear kernels serve, with both scale precisions for the quantized ones. */
export const WEIGHT_VARIANTS: { dtype: WeightDtype; scaleDtype?: ScaleDtype }[] = [
  { dtype: 'f32' },
  { dtype: 'f16' },
  { dtype: 'q8', scaleDtype: 'f16' },
  { dtype: 'q8', scaleDtype: 'f32' },
  { dtype: 'q4', scaleDtype: 'f16' },
  { dtype: 'q4', scaleDtype: 'f32' },
];
