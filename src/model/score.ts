/**
 * Teacher-forced scoring of a text: at every position the model's next-token distribution, given the true tokens
 * before it, reduced to the log-probability of the true next token and the most likely token (what `llama-webgpu
 * eval` reports as perplexity and top-1 agreement, as llama.cpp's llama-perplexity does).
 *
 * The text's tokens are scored in windows of the context: each window is BOS followed by up to contextLength - 1
 * text tokens, run from position 0 with a fresh cache, so every text token is predicted exactly once (the first of
 * each window from BOS alone). A window runs as batched prefill chunks; after each chunk the final RMSNorm and the
 * classifier run over all of its rows (one MatMul), and the [n, vocab] logits are copied to one of two staging
 * buffers, so the GPU computes chunk k + 1 while the CPU reduces chunk k.
 */
import type { ScoreOptions, ScoreResult } from '../engine-types.ts';
import { InvalidOptionsError } from '../errors.ts';
import { MatMul } from '../gpu/ops/matmul.ts';
import type { BoundOp } from '../gpu/ops/op.ts';
import { RmsNorm } from '../gpu/ops/rmsnorm.ts';
import type { LlamaModel } from './llama.ts';
import { vectorBuffer } from './weights.ts';

export interface TokenScores {
  /** -ln p(token i | BOS and the tokens before it), for each text token i. */
  nll: Float64Array;
  /** The most likely token at each of those positions (argmax of the logits; the lowest id on a tie). */
  top1: Uint32Array;
}

export type { ScoreProgress } from '../engine-types.ts';

/** exp(mean negative log-likelihood). */
export function perplexity(nll: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < nll.length; i++) sum += nll[i];
  return Math.exp(sum / nll.length);
}

/** A ScoreResult of `ids` from their scores. */
export function scoreResult(ids: number[], scores: TokenScores): ScoreResult {
  let sum = 0;
  for (const v of scores.nll) sum += v;
  const nll = sum / ids.length;
  return { tokenIds: ids, tokens: ids.length, nll, perplexity: Math.exp(nll), tokenNll: [...scores.nll], top1: [...scores.top1] };
}

/** Share of positions where two runs predict the same most likely token. */
export function top1Agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`top1Agreement: ${a.length} positions against ${b.length}`);
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

/** -ln softmax(logits)[target] and argmax(logits) of one row, in float64. */
function reduceRow(logits: Float32Array, offset: number, vocab: number, target: number): { nll: number; top1: number } {
  let max = -Infinity;
  let top1 = 0;
  for (let i = 0; i < vocab; i++) {
    const v = logits[offset + i];
    if (v > max) {
      max = v;
      top1 = i;
    }
  }
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[offset + i] - max);
  return { nll: Math.log(sum) + max - logits[offset + target], top1 };
}

export class Scorer {
  private readonly finalNorm: BoundOp;
  private readonly classifier: BoundOp;
  /** [prefillChunk, vocab] logits of every row of a chunk. */
  private readonly logits: GPUBuffer;
  private readonly staging: GPUBuffer[];
  private readonly chunkIds: Uint32Array;

  constructor(private readonly model: LlamaModel) {
    const { gpu, config: c, state: s, tensors } = model;
    const rows = model.prefillChunk;
    const wcls = tensors.get('wcls') ?? tensors.get('tokenEmbedding')!;
    this.finalNorm = new RmsNorm(gpu, c.dim, c.normEps, 'score.rmsFinal').bind('score.rmsFinal', s.x, vectorBuffer(tensors.get('rmsFinal')!), s.xb);
    this.logits = gpu.storage('score.logits', rows * c.vocabSize * 4);
    this.classifier = new MatMul(gpu, wcls, rows).bind('score.wcls', s.xb, this.logits);
    this.staging = [0, 1].map((i) =>
      gpu.device.createBuffer({ label: `score.staging${i}`, size: rows * c.vocabSize * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
    );
    this.chunkIds = new Uint32Array(rows);
  }

  /**
   * Scores `textIds` (the text's tokens without BOS): one entry per token. Throws InvalidOptionsError for an empty
   * text or an id outside the vocabulary. An aborted `signal` stops it between chunks and after the last (its reason
   * is thrown).
   */
  async score(textIds: number[], options: ScoreOptions = {}): Promise<TokenScores> {
    const { config: c, contextLength, prefillChunk } = this.model;
    if (textIds.length < 1) throw new InvalidOptionsError('text', 'tokenizes to no tokens; give a text of at least one token to score');
    const bad = textIds.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= c.vocabSize);
    if (bad >= 0) throw new InvalidOptionsError('text', `token ${bad} is ${textIds[bad]}, outside the vocabulary of ${c.vocabSize}`);
    const total = textIds.length;
    const nll = new Float64Array(total);
    const top1 = new Uint32Array(total);
    // Each chunk: the model's input ids, its first position, and the text index of its first target.
    const chunks: { ids: number[]; pos: number; first: number }[] = [];
    const perWindow = Math.max(1, contextLength - 1);
    for (let w0 = 0; w0 < total; w0 += perWindow) {
      const inputs = [c.bosId, ...textIds.slice(w0, Math.min(total, w0 + perWindow) - 1)];
      for (let p = 0; p < inputs.length; p += prefillChunk) chunks.push({ ids: inputs.slice(p, p + prefillChunk), pos: p, first: w0 + p });
    }
    const reduce = async (k: number) => {
      const { ids, first } = chunks[k];
      const staging = this.staging[k % 2];
      await staging.mapAsync(GPUMapMode.READ, 0, ids.length * c.vocabSize * 4);
      const logits = new Float32Array(staging.getMappedRange(0, ids.length * c.vocabSize * 4));
      for (let r = 0; r < ids.length; r++) {
        const s = reduceRow(logits, r * c.vocabSize, c.vocabSize, textIds[first + r]);
        nll[first + r] = s.nll;
        top1[first + r] = s.top1;
      }
      staging.unmap();
      options.onProgress?.({ done: first + ids.length, total });
    };
    for (let k = 0; k < chunks.length; k++) {
      options.signal?.throwIfAborted();
      this.submit(chunks[k], this.staging[k % 2]);
      if (k > 0) await reduce(k - 1);
    }
    await reduce(chunks.length - 1);
    options.signal?.throwIfAborted();
    return { nll, top1 };
  }

  /** One prefill chunk and its logits, copied into `staging`. */
  private submit(chunk: { ids: number[]; pos: number }, staging: GPUBuffer): void {
    const { gpu, state, forward, config } = this.model;
    const n = chunk.ids.length;
    // The chunk overwrites the KV cache from chunk.pos: a later prompt must not reuse what was cached there.
    this.model.forgetFrom(chunk.pos);
    this.chunkIds.set(chunk.ids);
    gpu.device.queue.writeBuffer(state.tokens, 0, this.chunkIds, 0, n);
    state.step.write(chunk.pos, n, 0);
    const encoder = gpu.device.createCommandEncoder({ label: 'score' });
    forward.encodePrefill(encoder, n, false, chunk.pos);
    const pass = encoder.beginComputePass({ label: 'score.logits' });
    this.finalNorm.encode(pass, n);
    this.classifier.encode(pass, n);
    pass.end();
    encoder.copyBufferToBuffer(this.logits, 0, staging, 0, n * config.vocabSize * 4);
    gpu.device.queue.submit([encoder.finish()]);
  }

  destroy(): void {
    this.logits.destroy();
    for (const b of this.staging) b.destroy();
  }
}
