// Reading and writing KV-cache rows from the CPU (kernel tests, bench-kernels' checks), in the cache's element type
// (f16 or f32).
import { f16BitsToF32, f32ToF16Bits } from '../formats/f16.ts';
import type { Gpu } from '../gpu/device.ts';
import type { KvCache } from '../gpu/ops/kv-cache.ts';

const F16_TO_F32 = Float32Array.from({ length: 65536 }, (_, h) => f16BitsToF32(h));

/**
 * Writes f32 rows into the cache starting at row `first`, in the cache's element type (CPU round to nearest even on
 * the f16 path), and returns the values as stored.
 */
export function writeRows(gpu: Gpu, cache: KvCache, buffer: GPUBuffer, rows: Float32Array, first: number): Float32Array {
  if (!cache.f16) {
    gpu.write(buffer, rows, first * cache.kvDim * 4);
    return rows;
  }
  const h = new Uint16Array(rows.length);
  const stored = new Float32Array(rows.length);
  for (let i = 0; i < rows.length; i++) stored[i] = F16_TO_F32[(h[i] = f32ToF16Bits(rows[i]))];
  gpu.write(buffer, h, first * cache.kvDim * 2);
  return stored;
}

/** Rows first .. first + count - 1 of a cache buffer, as f32. */
export async function readRows(gpu: Gpu, cache: KvCache, buffer: GPUBuffer, first: number, count: number): Promise<Float32Array> {
  const bytes = cache.f16 ? 2 : 4;
  const raw = await gpu.read(buffer, first * cache.kvDim * bytes, count * cache.kvDim * bytes);
  return cache.f16 ? Float32Array.from(new Uint16Array(raw), (h) => F16_TO_F32[h]) : new Float32Array(raw);
}
