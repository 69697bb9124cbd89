import { SamplingParamsError, KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';
import { uniformData, type BoundOp } from './op.ts';

/** Magnitude an infinite logit bias is clamped to: shaders may not honour infinities, and this bans (or forces) a token. */
const BIAS_LIMIT = 1e9;

export interface SamplingParams {
  /** 0 = greedy (argmax, ties to the lowest id). */
  temperature: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Keep the most likely tokens holding this much probability; 1 = off. */
  topP: number;
  /** Keep tokens at least this fraction as likely as the most likely one; 0 = off. */
  minP: number;
  /** Logits of tokens seen so far are divided (positive) or multiplied (negative) by it; 1 = off. */
  repetitionPenalty: number;
  /** Subtracted from a seen token's logit once per occurrence. */
  frequencyPenalty: number;
  /** Subtracted from a seen token's logit once. */
  presencePenalty: number;
}

export const GREEDY: SamplingParams = {
  temperature: 0,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
};

/**
 * Token sampling on the GPU (shaders/sample.wgsl): logit bias, repetition/frequency/presence penalties from
 * per-token counts kept on the GPU, temperature, top-k, top-p, min-p, and a seeded draw, in one dispatch. The
 * chosen id goes to tokens[outIndex], where the next step's embedding reads it, and its count is incremented.
 * A token mask (setMask, for structured output) restricts the draw to the allowed ids.
 */
export class Sampler {
  private readonly pipeline: GPUComputePipeline;
  private readonly params: GPUBuffer;
  private readonly bias: GPUBuffer;
  /** u32 [vocabSize]: occurrences of each token in the prompt and the generated text (for the penalties). */
  readonly counts: GPUBuffer;
  private readonly work: GPUBuffer;
  /** u32 [ceil(vocabSize / 32)]: bit (id & 31) of word id >> 5 set for an allowed id, read while `masked`. */
  private readonly mask: GPUBuffer;
  private biasActive = false;
  private masked = false;
  private last: SamplingParams = GREEDY;

  constructor(
    private readonly gpu: Gpu,
    readonly vocabSize: number,
    label = 'sampler',
  ) {
    if (!Number.isInteger(vocabSize) || vocabSize <= 0) throw new KernelShapeError('sampler', `vocabSize must be a positive integer, got ${vocabSize}`);
    const wg = gpu.tuning.samplerWorkgroup;
    // Workgroup memory: the candidate window (CAP = 960 values and ids) and two reduction arrays of wg words.
    gpu.requireLimit('maxComputeWorkgroupStorageSize', 8 * 960 + 8 * wg + 8, `The sampler with ${wg} threads`);
    this.pipeline = gpu.pipeline('sample', { WG: wg });
    this.params = gpu.uniform(`${label}.params`, new Uint8Array(48));
    this.bias = gpu.storage(`${label}.bias`, vocabSize * 4);
    this.counts = gpu.storage(`${label}.counts`, vocabSize * 4);
    this.work = gpu.storage(`${label}.work`, vocabSize * 4);
    this.mask = gpu.storage(`${label}.mask`, Math.ceil(vocabSize / 32) * 4);
    this.setParams(GREEDY);
  }

  setParams(p: SamplingParams): void {
    const bad = (what: string) => {
      throw new SamplingParamsError(`sampler: ${what}. Fix the sampling options.`);
    };
    if (!(p.temperature >= 0) || !Number.isFinite(p.temperature)) bad(`temperature must be a finite number >= 0, got ${p.temperature}`);
    if (!Number.isInteger(p.topK) || p.topK < 0) bad(`topK must be an integer >= 0 (0 = off), got ${p.topK}`);
    if (!(p.topP > 0 && p.topP <= 1)) bad(`topP must be in (0, 1] (1 = off), got ${p.topP}`);
    if (!(p.minP >= 0 && p.minP < 1)) bad(`minP must be in [0, 1) (0 = off), got ${p.minP}`);
    if (!(p.repetitionPenalty > 0) || !Number.isFinite(p.repetitionPenalty)) bad(`repetitionPenalty must be a finite number > 0 (1 = off), got ${p.repetitionPenalty}`);
    if (!Number.isFinite(p.frequencyPenalty)) bad(`frequencyPenalty must be finite, got ${p.frequencyPenalty}`);
    if (!Number.isFinite(p.presencePenalty)) bad(`presencePenalty must be finite, got ${p.presencePenalty}`);
    const data = uniformData([
      { u32: this.vocabSize },
      { u32: Math.min(p.topK, 0xffffffff) },
      { f32: p.temperature },
      { f32: p.topP },
      { f32: p.minP },
      { f32: p.repetitionPenalty },
      { f32: p.frequencyPenalty },
      { f32: p.presencePenalty },
      { u32: this.masked ? 1 : 0 },
    ]);
    this.gpu.write(this.params, new Uint8Array(data));
    this.last = p;
  }

  /**
   * Restricts the next draws to the ids whose bit is set in `bits` (u32 words, bit id & 31 of word id >> 5); null
   * lifts the mask. Writes the 4 KB mask for a 32k vocab (queued before the next submit); the shader reads it only
   * while a mask is set.
   */
  setMask(bits: Uint32Array | null): void {
    if (bits) {
      if (bits.length !== Math.ceil(this.vocabSize / 32)) {
        throw new KernelShapeError('sampler', `the mask has ${bits.length} words; a ${this.vocabSize}-token vocab needs ${Math.ceil(this.vocabSize / 32)}`);
      }
      this.gpu.write(this.mask, bits);
    }
    if (!!bits !== this.masked) {
      this.masked = !!bits;
      this.setParams(this.last);
    }
  }

  /** Adds bias.get(id) to the logit of each listed id (null clears). Infinite biases are clamped to +-1e9. */
  setLogitBias(bias: Map<number, number> | null): void {
    const dense = new Float32Array(this.vocabSize);
    for (const [id, b] of bias ?? []) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new SamplingParamsError(`sampler: logit bias for token id ${id}, outside the vocabulary 0..${this.vocabSize - 1}. Remove it.`);
      }
      if (Number.isNaN(b)) throw new SamplingParamsError(`sampler: logit bias for token id ${id} is NaN. Give a number.`);
      dense[id] = Math.max(-BIAS_LIMIT, Math.min(BIAS_LIMIT, b));
    }
    if (!bias?.size && !this.biasActive) return;
    this.biasActive = !!bias?.size;
    this.gpu.write(this.bias, dense);
  }

  /** Zeroes the token counts, then counts each id of `promptIds` (so the penalties cover the prompt too). */
  resetCounts(promptIds: number[] = []): void {
    const counts = new Uint32Array(this.vocabSize);
    for (const id of promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new SamplingParamsError(`sampler: prompt token id ${id} is outside the vocabulary 0..${this.vocabSize - 1}.`);
      }
      counts[id]++;
    }
    this.gpu.write(this.counts, counts);
  }

  /**
   * logits [vocabSize] f32 (the last token's); tokens u32, the chosen id written at `outIndex`; `step` is the
   * StepUniform buffer, whose seed drives the draw. encode(pass) records the single dispatch.
   */
  bind(label: string, logits: GPUBuffer, tokens: GPUBuffer, outIndex: number, step: GPUBuffer): BoundOp {
    if (!Number.isInteger(outIndex) || outIndex < 0 || (outIndex + 1) * 4 > tokens.size) {
      throw new KernelShapeError('sampler', `outIndex ${outIndex} is outside the tokens buffer of ${tokens.size / 4} ids`);
    }
    if (logits.size < this.vocabSize * 4) {
      throw new KernelShapeError('sampler', `the logits buffer holds ${logits.size / 4} floats, fewer than vocabSize ${this.vocabSize}`);
    }
    const target = this.gpu.uniform(`${label}.target`, new Uint32Array([outIndex]));
    const bindGroup = this.gpu.bindGroup(label, this.pipeline, [logits, this.bias, this.counts, this.work, tokens, this.params, target, step, this.mask]);
    const pipeline = this.pipeline;
    return {
      encode(pass) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(1);
      },
    };
  }
}
