/**
 * Float64 references for the attention block's non-linear kernels: RoPE (interleaved pairs) and causal
 * grouped-query attention over a KV cache. Inputs are what the GPU sees; all arithmetic is in doubles.
 */

/**
 * Interleaved-pair RoPE of rows [n, nHeadsInRow * headDim] for positions pos..pos+n-1:
 * angle = ((pos + t) / scale) * theta^(-2i / headDim) for pair i of every head.
 */
export function ropeRef(
  x: ArrayLike<number>,
  n: number,
  rowWidth: number,
  headDim: number,
  pos: number,
  theta: number,
  scale: number,
  rotaryDims = headDim,
): Float64Array {
  const out = Float64Array.from(x);
  for (let t = 0; t < n; t++) {
    const p = (pos + t) / scale;
    for (let base = t * rowWidth; base < (t + 1) * rowWidth; base += headDim) {
      for (let i = 0; i < rotaryDims / 2; i++) {
        const angle = p * Math.pow(theta, (-2 * i) / rotaryDims);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const a = out[base + 2 * i];
        const b = out[base + 2 * i + 1];
        out[base + 2 * i] = a * c - b * s;
        out[base + 2 * i + 1] = a * s + b * c;
      }
    }
  }
  return out;
}

/**
 * RoPE of q and of keys into an f32 cache, for inputs in [-1, 1]: the angle is reduced modulo one turn in exact
 * integer arithmetic, so the error is that of one f32 cos/sin in [-pi, pi) and a 2x2 rotation, independent of the
 * position. An f16 cache adds the half rounding (F16_RTOL relative) to keys and values.
 */
export const ROPE_TOL = { atol: 2e-6, rtol: 2e-6 };

/** Relative rounding of a value stored as f16 (the KV cache on adapters with shader-f16). */
export const F16_RTOL = 2 ** -10;

/**
 * Attention against the reference computed from the values actually in the cache (f16-rounded K/V on the f16
 * path): f32 dot products of 128 terms, online softmax over up to 4096 keys, outputs convex combinations of V in
 * [-1, 1].
 */
export const ATTENTION_TOL = { atol: 3e-5, rtol: 1e-4 };

export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/**
 * out[t, h*hd..] = softmax_j(q[t, h] . K[j, g] / sqrt(hd)) V[j, g] over j = 0..pos+t, with g = h / (nHeads/nKvHeads).
 * q [n, nHeads*hd]; keyCache, valueCache [>= pos+n, nKvHeads*hd] (rows pos..pos+n-1 hold the step's own keys).
 */
export function attentionRef(
  q: ArrayLike<number>,
  keyCache: ArrayLike<number>,
  valueCache: ArrayLike<number>,
  n: number,
  pos: number,
  s: AttentionShape,
): Float64Array {
  const { nHeads, nKvHeads, headDim: hd } = s;
  const kvDim = nKvHeads * hd;
  const kvMul = nHeads / nKvHeads;
  const out = new Float64Array(n * nHeads * hd);
  for (let t = 0; t < n; t++) {
    const len = pos + t + 1;
    const att = new Float64Array(len);
    for (let h = 0; h < nHeads; h++) {
      const qo = (t * nHeads + h) * hd;
      const ko = Math.floor(h / kvMul) * hd;
      let max = -Infinity;
      for (let j = 0; j < len; j++) {
        let dot = 0;
        for (let i = 0; i < hd; i++) dot += q[qo + i] * keyCache[j * kvDim + ko + i];
        att[j] = dot / Math.sqrt(hd);
        max = Math.max(max, att[j]);
      }
      let sum = 0;
      for (let j = 0; j < len; j++) sum += att[j] = Math.exp(att[j] - max);
      for (let j = 0; j < len; j++) {
        const w = att[j] / sum;
        for (let i = 0; i < hd; i++) out[qo + i] += w * valueCache[j * kvDim + ko + i];
      }
    }
  }
  return out;
}
