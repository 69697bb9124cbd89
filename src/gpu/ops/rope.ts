import { KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';
import type { KvCache } from './kv-cache.ts';
import { paramsUniform, type BoundOp } from './op.ts';

const WG = 64;

export interface RopeOptions {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Base frequency (10000 for Llama 2). */
  theta: number;
  /** Linear scaling: positions are divided by it (1 = none). */
  scale: number;
  /** Leading dimensions of each head that rotate (the model's rope dimension count); the rest pass through. Default headDim. */
  rotaryDims?: number;
  /** Most tokens one step may carry. */
  maxTokens: number;
}

/**
 * Per-pair rotation speed in turns per position, (theta^(-2i/rotaryDims) / (scale * 2 pi)) mod 1, as a 64-bit
 * fixed-point fraction [hi, lo] per pair: the shader reduces pos * freq modulo one turn exactly (shaders/rope.wgsl).
 * Pairs past rotaryDims / 2 get speed 0, a rotation by exactly 0 (cos 1, sin 0): they pass through unchanged.
 */
export function ropeTurns(headDim: number, theta: number, scale: number, rotaryDims = headDim): Uint32Array {
  const out = new Uint32Array(headDim);
  for (let i = 0; i < rotaryDims / 2; i++) {
    const turns = Math.pow(theta, (-2 * i) / rotaryDims) / (scale * 2 * Math.PI);
    const frac = (turns - Math.floor(turns)) * 2 ** 32;
    const hi = Math.floor(frac);
    out[2 * i] = hi;
    out[2 * i + 1] = Math.floor((frac - hi) * 2 ** 32);
  }
  return out;
}

/**
 * Rotary position embedding, interleaved pairs, on q (in place) and k, storing the step's rotated keys and its
 * values into a layer's KV cache (shaders/rope.wgsl): one dispatch where RoPE and a cache write would take two.
 */
export class Rope {
  private readonly freq: GPUBuffer;
  private readonly groupsX: number;

  constructor(
    private readonly gpu: Gpu,
    readonly o: RopeOptions,
    label = 'rope',
  ) {
    const { nHeads, nKvHeads, headDim, theta, scale, maxTokens, rotaryDims = headDim } = o;
    const shape = `nHeads=${nHeads} nKvHeads=${nKvHeads} headDim=${headDim}`;
    for (const [name, v] of Object.entries({ nHeads, nKvHeads, headDim, maxTokens })) {
      if (!Number.isInteger(v) || v <= 0) throw new KernelShapeError('rope', `${name} must be a positive integer (${shape}, maxTokens=${maxTokens})`);
    }
    if (headDim % 2 !== 0) throw new KernelShapeError('rope', `headDim must be even to rotate pairs (${shape}); check the model's dim / nHeads`);
    if (!(theta > 1) || !Number.isFinite(theta)) throw new KernelShapeError('rope', `theta must be a finite number > 1, got ${theta}`);
    if (!(scale > 0) || !Number.isFinite(scale)) throw new KernelShapeError('rope', `scale must be a positive finite number, got ${scale}`);
    if (!Number.isInteger(rotaryDims) || rotaryDims < 2 || rotaryDims > headDim || rotaryDims % 2 !== 0) {
      throw new KernelShapeError('rope', `rotaryDims must be even and within 2..headDim (${shape}), got ${rotaryDims}; check the model's rope dimension count`);
    }
    this.freq = gpu.storage(`${label}.freq`, ropeTurns(headDim, theta, scale, rotaryDims));
    this.groupsX = Math.ceil(((nHeads + 2 * nKvHeads) * headDim) / 2 / WG);
  }

  /**
   * qkv [maxTokens, qkvDim]: each token's q [nHeads*headDim], k and v [nKvHeads*headDim] side by side; q is rotated
   * in place, the rotated keys and the values stored into `cache` rows pos..pos+n-1; `step` is the StepUniform
   * buffer. encode(pass, n) handles the first n tokens.
   */
  bind(label: string, qkv: GPUBuffer, cache: KvCache, step: GPUBuffer): BoundOp {
    const { nHeads, nKvHeads, headDim, maxTokens } = this.o;
    const qkvDim = (nHeads + 2 * nKvHeads) * headDim;
    if (qkv.size < maxTokens * qkvDim * 4) {
      throw new KernelShapeError('rope', `${label}: qkv (${qkv.label}) holds ${qkv.size} bytes, but ${maxTokens} tokens of q, k and v need ${maxTokens * qkvDim * 4}`);
    }
    if (cache.kvDim !== nKvHeads * headDim) {
      throw new KernelShapeError('rope', `${label}: the KV cache rows hold ${cache.kvDim} values, but nKvHeads * headDim = ${nKvHeads * headDim}`);
    }
    const pipeline = this.gpu.pipeline('rope', { WG, F16_CACHE: cache.f16 ? 1 : 0 });
    const params = paramsUniform(this.gpu, `${label}.params`, [{ u32: nHeads }, { u32: nKvHeads }, { u32: headDim / 2 }, { u32: cache.maxSeqLen }, { u32: qkvDim / 2 }]);
    const bindGroup = this.gpu.bindGroup(label, pipeline, [this.freq, qkv, cache.keyCache, cache.valueCache, params, step]);
    const groupsX = this.groupsX;
    return {
      encode(pass, n = 1) {
        if (n > maxTokens) throw new KernelShapeError('rope', `${n} tokens in one step, but the op was built for maxTokens=${maxTokens}`);
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(groupsX, n);
      },
    };
  }
}
