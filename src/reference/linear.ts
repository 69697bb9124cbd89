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

/** Every weight encoding the linear kernels serve, with both scale precisions for the quantized ones. */
export const WEIGHT_VARIANTS: { dtype: WeightDtype; scaleDtype?: ScaleDtype }[] = [
  { dtype: 'f32' },
  { dtype: 'f16' },
  { dtype: 'q8', scaleDtype: 'f16' },
  { dtype: 'q8', scaleDtype: 'f32' },
  { dtype: 'q4', scaleDtype: 'f16' },
  { dtype: 'q4', scaleDtype: 'f32' },
];
