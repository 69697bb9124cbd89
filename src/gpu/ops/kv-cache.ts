import { KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';

/**
 * The key/value cache of one layer: keyCache and valueCache [maxSeqLen, kvDim], row p holding position p (keys
 * after RoPE), written by the Rope op (shaders/rope.wgsl). Elements are f16 when the device has shader-f16 (half
 * the memory traffic of attention), else f32.
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
