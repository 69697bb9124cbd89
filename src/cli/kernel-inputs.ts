/**
 * Inputs for bench-kernels that the CPU can reproduce: weights of random bytes in the right encoding (written to the
 * GPU as a repeated pattern, without encoding 7B-sized tensors on the CPU) whose rows it can decode, uniform random
 * activations, and the per-call traffic arithmetic printed beside each time.
 */
import type { Gpu } from '../gpu/device.ts';
import { destroyWeight, planChunks, weightBytes, type GpuWeight } from '../gpu/weights.ts';
import { encodeK, isKDtype, K_BLOCK, type KDtype } from '../formats/kquant.ts';
import { decodeWeights, encodedByteLengths, groupsPerRow, isQuantized, type WeightDtype } from '../formats/quant.ts';

/** n uniform values in [-1, 1) from a 32-bit LCG seeded with `seed`. */
export function uniform(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** 16 MiB of random words: bytes, or finite normal f16 pairs with magnitudes about 0.03..0.5 (scales, f16 weights). */
function randomWords(kind: 'f16' | 'bytes'): Uint8Array {
  const block = new Uint32Array(4 << 20);
  let seed = 0x9e3779b9;
  for (let i = 0; i < block.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    block[i] = kind === 'bytes' ? seed : (seed & 0x83ff83ff) | ((10 + ((seed >>> 12) & 3)) << 10) | ((10 + ((seed >>> 28) & 3)) << 26);
  }
  return new Uint8Array(block.buffer);
}

const patterns = new Map<string, Uint8Array>();
function pattern(kind: 'f16' | 'bytes'): Uint8Array {
  let p = patterns.get(kind);
  if (!p) patterns.set(kind, (p = randomWords(kind)));
  return p;
}

/** 64 rows of `cols` uniform values quantized into k-quant blocks (random bytes would make NaN and denormal d). */
function kBlocks(dtype: KDtype, cols: number): Uint8Array {
  return encodeK(uniform(64 * cols, 12345), dtype).data;
}

/** `length` bytes of `p` repeated, from `offset`. */
function repeated(p: Uint8Array, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let o = 0; o < length; ) {
    const at = (offset + o) % p.length;
    const n = Math.min(length - o, p.length - at);
    out.set(p.subarray(at, at + n), o);
    o += n;
  }
  return out;
}

/** Fills a GPU buffer with copies of `p` from offset 0. */
function fill(gpu: Gpu, buffer: GPUBuffer, p: Uint8Array): void {
  for (let off = 0; off < buffer.size; off += p.byteLength) gpu.write(buffer, p.subarray(0, Math.min(p.byteLength, buffer.size - off)), off);
}

/** A GPU weight of random bytes and the decoded (float32) values of any of its rows. */
export interface BenchWeight {
  weight: GpuWeight;
  row: (r: number) => Float32Array;
  /** Bytes per element the kernels read (data and scales), for the traffic formula. */
  bytesPerElement: number;
  destroy: () => void;
}

/**
 * A [rows, cols] weight in `dtype` with f16 scales, chunked like uploadWeight; every chunk's data and scales hold a
 * repeated pattern from their start (random words; for k-quants 64 encoded rows of uniform values).
 */
export function randomWeight(gpu: Gpu, name: string, rows: number, cols: number, dtype: WeightDtype): BenchWeight {
  const data = isKDtype(dtype) ? kBlocks(dtype, cols) : dtype === 'f16' ? pattern('f16') : pattern('bytes');
  const scales = pattern('f16');
  // f32 weights: random f32 bits can be NaN or huge; uniform values repeated instead.
  const f32 = dtype === 'f32' ? new Uint8Array(uniform(Math.min(rows, 256) * cols, 777).buffer) : undefined;
  const rowData = dtype === 'f32' ? cols * 4 : dtype === 'f16' ? cols * 2 : encodedByteLengths(dtype, 1, cols).data;
  const rowScales = 2 * (isKDtype(dtype) ? Math.ceil(cols / K_BLOCK) : groupsPerRow(cols));
  const plan = planChunks(name, dtype, rows, cols, 'f16', gpu.limits.maxStorageBufferBindingSize);
  const chunks = plan.map(({ rowStart, rows: n }) => {
    const sizes = encodedByteLengths(dtype, n, cols, 'f16');
    const chunk = { rowStart, rows: n, data: gpu.storage(`${name}.rows${rowStart}.w_q`, sizes.data), scales: undefined as GPUBuffer | undefined };
    fill(gpu, chunk.data, f32 ?? data);
    if (isQuantized(dtype)) fill(gpu, (chunk.scales = gpu.storage(`${name}.rows${rowStart}.w_s`, sizes.scales)), scales);
    return chunk;
  });
  const weight: GpuWeight = { name, dtype, rows, cols, scaleDtype: 'f16', chunks };
  const row = (r: number) => {
    const c = chunks.find((k) => r >= k.rowStart && r < k.rowStart + k.rows)!;
    const i = r - c.rowStart;
    const enc = { data: repeated(f32 ?? data, i * rowData, rowData), scales: isQuantized(dtype) ? repeated(scales, i * rowScales, rowScales) : undefined };
    return decodeWeights(enc, 1, cols, dtype, 'f16');
  };
  return { weight, row, bytesPerElement: weightBytes(weight) / (rows * cols), destroy: () => destroyWeight(weight) };
}

/** One term of a call's memory traffic: `what dims[0]×dims[1]×...×size B`. */
export interface Term {
  what: string;
  dims: number[];
  /** Bytes per element. */
  size: number;
}

const product = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** Total bytes of the terms. */
export function trafficBytes(terms: Term[]): number {
  return terms.reduce((s, t) => s + product(t.dims) * t.size, 0);
}

/** 9470000 -> "9.47 MB" (powers of 1000, three significant digits). */
export function si(value: number, unit: string): string {
  const prefixes = ['', 'k', 'M', 'G', 'T'];
  let p = 0;
  while (Math.abs(value) >= 1000 && p < prefixes.length - 1) {
    value /= 1000;
    p++;
  }
  return `${Number(value.toPrecision(3))} ${prefixes[p]}${unit}`;
}

/** "weights 4096×4096×0.5625 B + x 4096×4 B + y 4096×4 B = 9.47 MB; 9.47 MB / 23.2 ms = 0.408 GB/s". */
export function trafficLine(terms: Term[], seconds: number): string {
  const bytes = trafficBytes(terms);
  const sum = terms.map((t) => `${t.what} ${[...t.dims.filter((d) => d !== 1), t.size].join('×')} B`).join(' + ');
  return `${sum} = ${si(bytes, 'B')}; ${si(bytes, 'B')} / ${ms(seconds)} = ${si(bytes / seconds, 'B/s')}`;
}

/** "2×128×4096×4096 = 4.29 GFLOP; 4.29 GFLOP / 322 ms = 13.3 GFLOP/s". */
export function flopsLine(factors: number[], seconds: number): string {
  const flops = product(factors);
  return `${factors.join('×')} = ${si(flops, 'FLOP')}; ${si(flops, 'FLOP')} / ${ms(seconds)} = ${si(flops / seconds, 'FLOP/s')}`;
}

/** Seconds as milliseconds with three significant digits (at least). */
export function ms(seconds: number): string {
  const v = seconds * 1000;
  return `${v >= 100 ? v.toFixed(0) : Number(v.toPrecision(3))} ms`;
}
