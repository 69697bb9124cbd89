import { KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';
import { uniformData, type BoundOp } from './op.ts';

const WG = 64;

/**
 * The key/value cache of one layer: keyCache and valueCache [maxSeqLen, kvDim], row p holding position p (keys
 * after RoPE). Elements are f16 when the device has shader-f16 (half the memory traffic of attention), else f32.
 */
export interface KvCache {
  keyCache: GPUBuffer;
  valueCache: GPUBuffer;
  f16: boolean;
  maxSeqLen: number;
  kvDim: number;
}

export function createKvCache(gpu: Gpu, label: string, maxSeqLen: number, kvDim: number): KvCache {
  if (!Number.isInteger(maxSeqLen) || maxSeqLen <= 0) throw new KernelShapeError('kv-cache', `maxSeqLen must be a positive integer, got ${maxSeqLen}`);
  if (!Number.isInteger(kvDim) || kvDim <= 0 || kvDim % 4 !== 0) {
    throw new KernelShapeError('kv-cache', `kvDim must be a positive multiple of 4 (rows move as vec4), got ${kvDim}`);
  }
  const f16 = gpu.f16;
  const bytes = maxSeqLen * kvDim * (f16 ? 2 : 4);
  gpu.requireLimit('maxStorageBufferBindingSize', bytes, `A KV cache of ${maxSeqLen} positions x ${kvDim} (${f16 ? 'f16' : 'f32'})`);
  gpu.requireLimit('maxBufferSize', bytes, `A KV cache of ${maxSeqLen} positions x ${kvDim} (${f16 ? 'f16' : 'f32'})`);
  return {
    keyCache: gpu.storage(`${label}.keyCache`, bytes),
    valueCache: gpu.storage(`${label}.valueCache`, bytes),
    f16,
    maxSeqLen,
    kvDim,
  };
}

/** Writes the step's k and v rows into the cache at positions pos..pos+n-1 (shaders/kv_write*.wgsl). */
export class KvWrite {
  private readonly pipeline: GPUComputePipeline;
  private readonly params: GPUBuffer;
  private readonly groupsX: number;

  constructor(
    private readonly gpu: Gpu,
    readonly cache: KvCache,
    label = 'kvWrite',
  ) {
    this.pipeline = gpu.pipeline(cache.f16 ? 'kv_write_f16' : 'kv_write', { WG });
    this.params = gpu.uniform(`${label}.params`, new Uint8Array(uniformData([{ u32: cache.kvDim / 4 }, { u32: cache.maxSeqLen }])));
    this.groupsX = Math.ceil(cache.kvDim / 4 / WG);
  }

  /** k, v [rows, kvDim] f32; `step` is the StepUniform buffer. encode(pass, n) stores the first n rows. */
  bind(label: string, k: GPUBuffer, v: GPUBuffer, step: GPUBuffer): BoundOp {
    const { keyCache, valueCache } = this.cache;
    const bindGroup = this.gpu.bindGroup(label, this.pipeline, [k, v, keyCache, valueCache, this.params, step]);
    const { pipeline, groupsX } = this;
    return {
      encode(pass, n = 1) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(groupsX, n);
      },
    };
  }
}
