/** Float64 references for the element-wise kernels. */

/** silu(hb) * hb2, silu(x) = x / (1 + e^-x). */
export function swigluRef(hb: ArrayLike<number>, hb2: ArrayLike<number>): Float64Array {
  const out = new Float64Array(hb.length);
  for (let i = 0; i < hb.length; i++) out[i] = (hb[i] / (1 + Math.exp(-hb[i]))) * hb2[i];
  return out;
}

