/** Teacher-forced scores from the float64 reference forward pass, the figures src/model/score.ts is checked against. */
import { readManifest, readPackageTensor } from '../helpers/fixtures.ts';
import { argmax, ReferenceModel } from './forward.ts';

/**
 * -ln p(next) and argmax at every text position of `ids` (the text's tokens without BOS) under the package in
 * `dir`, in windows of `context` tokens each starting from BOS, as Scorer windows them.
 */
export function referenceScores(dir: string, ids: number[], context: number): { nll: number[]; top1: number[] } {
  const m = readManifest(dir);
  const weights = new Map(m.tensors.map((t) => [t.name, readPackageTensor(dir, m, t.name)]));
  const nll: number[] = [];
  const top1: number[] = [];
  for (let w0 = 0; w0 < ids.length; w0 += context - 1) {
    const ref = new ReferenceModel(m.config, weights, context);
    const inputs = [m.config.bosId, ...ids.slice(w0, Math.min(ids.length, w0 + context - 1) - 1)];
    inputs.forEach((token, pos) => {
      const logits = ref.forward(token, pos);
      let max = -Infinity;
      for (const v of logits) max = Math.max(max, v);
      let sum = 0;
      for (const v of logits) sum += Math.exp(v - max);
      nll.push(Math.log(sum) + max - logits[ids[w0 + pos]]);
      top1.push(argmax(logits));
    });
  }
  return { nll, top1 };
}
