/**
 * Activation buffers of the forward pass (llama2.c's RunState), allocated once for up to `maxTokens` tokens per
 * step. Every buffer is labelled "state.<name>".
 */
import type { Gpu } from '../gpu/device.ts';
import { createKvCache, type KvCache } from '../gpu/ops/kv-cache.ts';
import { StepUniform } from '../gpu/ops/step.ts';
import type { ModelConfig } from './config.ts';
import { kvDim, qkvDim } from './config.ts';

export class RunState {
  readonly x: GPUBuffer; // [maxTokens, dim] residual stream
  readonly xb: GPUBuffer; // [maxTokens, dim] normalized input of a sub-block
  readonly xb2: GPUBuffer; // [maxTokens, dim] attention output
  readonly xLast: GPUBuffer; // [dim] last token's residual after a prefill
  /** [maxTokens, qkvDim]: each token's q [dim], k [kvDim] and v [kvDim] side by side (qkvDim = dim + 2 kvDim). */
  readonly qkv: GPUBuffer;
  readonly hb: GPUBuffer; // [maxTokens, hiddenDim]
  readonly logits: GPUBuffer; // [vocab] of the last token
  /** u32 [maxTokens]: prompt ids of a prefill; slot 0 holds the sampled id that the next decode step embeds. */
  readonly tokens: GPUBuffer;
  readonly kvCaches: KvCache[];
  readonly step: StepUniform;

  constructor(gpu: Gpu, c: ModelConfig, readonly maxTokens: number, readonly contextLength: number) {
    const f32 = (name: string, n: number) => gpu.storage(`state.${name}`, n * 4);
    this.x = f32('x', maxTokens * c.dim);
    this.xb = f32('xb', maxTokens * c.dim);
    this.xb2 = f32('xb2', maxTokens * c.dim);
    this.xLast = f32('xLast', c.dim);
    this.qkv = f32('qkv', maxTokens * qkvDim(c));
    this.hb = f32('hb', maxTokens * c.hiddenDim);
    this.logits = f32('logits', c.vocabSize);
    this.tokens = gpu.storage('state.tokens', maxTokens * 4);
    this.kvCaches = Array.from({ length: c.nLayers }, (_, l) => createKvCache(gpu, `L${l}.kv`, contextLength, kvDim(c)));
    this.step = new StepUniform(gpu, 'state.step');
  }

  destroy(): void {
    for (const b of [this.x, this.xb, this.xb2, this.xLast, this.qkv, this.hb, this.logits, this.tokens]) b.destroy();
    for (const kv of this.kvCaches) {
      kv.keyCache.destroy();
      kv.valueCache.destroy();
    }
    this.step.buffer.destroy();
  }
}
