/**
 * A Llama 2 model resident on the GPU: weights, activations, KV cache, forward pass and sampler, with the two
 * step kinds the generation loop needs. Each step is one command buffer and one submit; the sampled token stays
 * on the GPU (tokens[0]) and is copied into a small mappable buffer the caller reads back without blocking.
 */
import type { Gpu } from '../gpu/device.ts';
import { Sampler } from '../gpu/ops/sampler.ts';
import type { GpuWeight } from '../gpu/weights.ts';
import type { ModelConfig } from './config.ts';
import { Forward } from './forward.ts';
import { RunState } from './state.ts';
import { assembleWeights, fuseQkv } from './weights.ts';

export interface LlamaModelOptions {
  /** KV cache length (default: the model's maxSeqLen). */
  contextLength?: number;
  /** Most prompt tokens processed in one prefill step (default 64). */
  prefillChunk?: number;
  /** Names the model in errors. */
  source?: string;
}

export class LlamaModel {
  readonly state: RunState;
  readonly forward: Forward;
  readonly sampler: Sampler;
  readonly contextLength: number;
  readonly prefillChunk: number;
  private readonly promptIds: Uint32Array;
  /** Token ids whose keys and values the KV cache holds at positions 0..length-1, as far as the CPU knows them. */
  private readonly kvIds: number[] = [];
  /** Command buffers submitted so far (the benchmark reports submits per token). */
  submits = 0;
  /** The mappable buffers the generation loop reads sampled tokens back through (generate.ts), made on first use. */
  readbackRing: GPUBuffer[] | undefined;
  /** The decode step time (a running average) and the prefill time per prompt token, for pacing readbacks. */
  readonly pace = { stepMs: 0, prefillMsPerToken: 0 };

  constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly tensors: Map<string, GpuWeight>,
    options: LlamaModelOptions = {},
  ) {
    this.contextLength = Math.min(options.contextLength ?? config.maxSeqLen, config.maxSeqLen);
    this.prefillChunk = Math.max(1, Math.min(options.prefillChunk ?? 64, this.contextLength));
    const weights = assembleWeights(tensors, config, options.source);
    fuseQkv(gpu, weights, tensors);
    this.state = new RunState(gpu, config, this.prefillChunk, this.contextLength);
    this.sampler = new Sampler(gpu, config.vocabSize);
    this.forward = new Forward(gpu, config, weights, this.state, this.sampler);
    this.promptIds = new Uint32Array(this.prefillChunk);
  }

  /**
   * Submits the prefill of `ids` at positions pos.. in chunks; the last chunk samples the first generated token
   * into tokens[0] and copies it into `readback` (offset 0) when given. `seed` is the sampling seed of that draw.
   */
  prefill(ids: number[], pos: number, seed: number, readback?: GPUBuffer): void {
    const { device } = this.gpu;
    this.forgetFrom(pos);
    if (this.kvIds.length === pos) this.kvIds.push(...ids);
    for (let start = 0; start < ids.length; start += this.prefillChunk) {
      const n = Math.min(this.prefillChunk, ids.length - start);
      const last = start + n >= ids.length;
      this.promptIds.set(ids.slice(start, start + n));
      device.queue.writeBuffer(this.state.tokens, 0, this.promptIds, 0, n);
      this.state.step.write(pos + start, n, seed);
      const encoder = device.createCommandEncoder({ label: 'prefill' });
      this.forward.encodePrefill(encoder, n, last, pos + start);
      if (last && readback) encoder.copyBufferToBuffer(this.state.tokens, 0, readback, 0, 4);
      device.queue.submit([encoder.finish()]);
      this.submits++;
    }
  }

  /** Submits one decode step for the token in tokens[0] at `pos`, sampling the next into tokens[0] and `readback`. */
  decode(pos: number, seed: number, readback: GPUBuffer, readbackOffset = 0): void {
    // The token embedded here is known only on the GPU until it is read back (see noteDecoded).
    this.forgetFrom(pos);
    this.state.step.write(pos, 1, seed);
    this.submitPass('decode', (pass) => this.forward.encodeDecode(pass, pos), readback, readbackOffset);
  }

  /**
   * A decode step in two submits, for a caller that decides the next draw's mask only once the previous token is
   * read back: decodeForward computes the logits of the token in tokens[0] at `pos` (the GPU runs it meanwhile),
   * sampleNext then draws the next token into tokens[0] and `readback`.
   */
  decodeForward(pos: number, seed: number): void {
    this.forgetFrom(pos);
    this.state.step.write(pos, 1, seed);
    this.submitPass('decode.forward', (pass) => this.forward.encodeDecode(pass, pos, false));
  }

  sampleNext(readback: GPUBuffer, readbackOffset = 0): void {
    this.submitPass('decode.sample', (pass) => this.forward.encodeSample(pass), readback, readbackOffset);
  }

  private submitPass(label: string, encode: (pass: GPUComputePassEncoder) => void, readback?: GPUBuffer, readbackOffset = 0): void {
    const encoder = this.gpu.device.createCommandEncoder({ label });
    const pass = encoder.beginComputePass({ label });
    encode(pass);
    pass.end();
    if (readback) encoder.copyBufferToBuffer(this.state.tokens, 0, readback, readbackOffset, 4);
    this.gpu.device.queue.submit([encoder.finish()]);
    this.submits++;
  }

  /**
   * Token ids whose keys and values sit in the KV cache at positions 0.., the ones a new prompt that starts with
   * them need not prefill again (positions past them hold stale entries that attention never reads).
   */
  get cachedIds(): readonly number[] {
    return this.kvIds;
  }

  /** Records the ids that decode steps embedded at positions pos.. once they are read back. */
  noteDecoded(pos: number, ids: number[]): void {
    if (this.kvIds.length === pos) this.kvIds.push(...ids);
  }

  /** Marks positions pos.. as unknown (about to be overwritten, or lost). */
  forgetFrom(pos: number): void {
    if (this.kvIds.length > pos) this.kvIds.length = pos;
  }

  /** Places a token in tokens[0] for the next decode step (used when the CPU already knows it). */
  setNextToken(id: number): void {
    this.promptIds[0] = id;
    this.gpu.device.queue.writeBuffer(this.state.tokens, 0, this.promptIds, 0, 1);
  }

  destroy(): void {
    this.state.destroy();
    for (const b of this.readbackRing ?? []) b.destroy();
    for (const n of this.forward.folded) n.buffer.destroy();
    for (const w of this.tensors.values()) {
      for (const c of w.chunks) {
        c.data.destroy();
        c.scales?.destroy();
      }
    }
  }
}
