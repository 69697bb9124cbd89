/**
 * Float64 reference of RMSNorm. Inputs are float32 arrays (what the GPU sees); all arithmetic here is in
 * JavaScript doubles, so the GPU result is compared with the exact answer for its inputs.
 */

/** out[r, i] = x[r, i] * w[i] / sqrt(mean(x[r]^2) + eps) */
export function rmsnormRef(x: ArrayLike<number>, w: ArrayLike<number>, rows: number, dim: number, eps: number): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] * x[r * dim + i];
    const scale = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[r * dim + i] = x[r * dim + i] * scale * w[i];
  }
  return out;
}

/** RMSNorm: a sum of squares over dim f32 terms and one rsqrt; inputs of magnitude about 1. */
export const RMSNORM_TOL = { atol: 1e-5, rtol: 1e-5 };
