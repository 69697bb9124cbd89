/**
 * Float64 reference of the GPU sampler (shaders/sample.wgsl): the adjusted logits, the set of tokens every
 * filter keeps, and the probability the draw gives each token.
 */
import type { SamplingParams } from '../gpu/ops/sampler.ts';

/** logits + bias, then repetition / frequency / presence penalties for tokens with a count. */
export function adjustedLogitsRef(
  logits: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  counts: ArrayLike<number>,
  p: SamplingParams,
): Float64Array {
  const z = new Float64Array(logits.length);
  for (let i = 0; i < z.length; i++) {
    let v = logits[i] + (bias ? bias[i] : 0);
    const c = counts[i];
    if (c > 0) {
      v = v > 0 ? v / p.repetitionPenalty : v * p.repetitionPenalty;
      v -= c * p.frequencyPenalty + p.presencePenalty;
    }
    z[i] = v;
  }
  return z;
}

/** Greedy choice: the lowest id of the largest adjusted logit. */
export function argmaxRef(z: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
  return best;
}

/**
 * Probability of each token under temperature > 0 and the filters (0 for tokens no filter keeps):
 * top-k keeps the k largest (ties to the lowest ids); top-p keeps, of those, every token whose value is at least
 * the value at which the descending cumulative probability first reaches topP; min-p keeps p_i >= minP * p_max.
 */
export function samplingProbsRef(z: ArrayLike<number>, p: SamplingParams): Float64Array {
  const n = z.length;
  const y = Float64Array.from(z, (v) => v / p.temperature);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => y[b] - y[a] || a - b);
  let kept = order;
  if (p.topK > 0 && p.topK < n) kept = kept.slice(0, p.topK);
  const max = y[order[0]];
  const w = (i: number) => Math.exp(y[i] - max);
  if (p.topP < 1) {
    const total = kept.reduce((s, i) => s + w(i), 0);
    let acc = 0;
    let cut = kept.length;
    for (let r = 0; r < kept.length; r++) {
      acc += w(kept[r]);
      if (acc >= p.topP * total) {
        const v = y[kept[r]];
        cut = r + 1;
        while (cut < kept.length && y[kept[cut]] === v) cut++;
        break;
      }
    }
    kept = kept.slice(0, cut);
  }
  if (p.minP > 0) kept = kept.filter((i) => w(i) >= p.minP);
  const probs = new Float64Array(n);
  let sum = 0;
  for (const i of kept) sum += probs[i] = w(i);
  for (const i of kept) probs[i] /= sum;
  return probs;
}
