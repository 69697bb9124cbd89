/**
 * The weight encodings the GPU kernels read, byte for byte (specified in shaders/README.md).
 * Converters write tensors with `encodeWeights`; tests and tools read them back with `decodeWeights`.
 *
 * A 2-D weight has shape [rows, cols] (PyTorch's [out, in]); rows are independent, so a tensor can be split
 * into row ranges that live in different GPU buffers.
 *   f32: row-major float32.
 *   f16: row-major IEEE half, little-endian; elements packed two per u32 (element i in the low half when i is even).
 *   q8:  each row is ceil(cols/32) groups of 32 int8 (8 u32); value = q * scale; scale = max|w| / 127.
 *   q4:  each row is ceil(cols/32) groups of 32 nibbles (4 u32): u32 j of a group holds elements 8j..8j+7, element
 *        8j+i in bits 4i..4i+3; value = (nibble - 8) * scale; scale = m / -8 where m is the element of largest magnitude.
 *   Padding elements at the end of a row (cols not a multiple of 32) are zero.
 *   q8/q4 scales: one per (row, group), row-major [rows, groupsPerRow], f16 (default) or f32.
 *   q4k/q5k/q6k: ggml's k-quant super-blocks of 256 values kept as they are (kquant.ts); q6k's d in w_s.
 */
import { f16BitsToF32, f32ToF16Bits } from './f16.ts';
import { decodeK, encodeK, isKDtype, K_BLOCK, K_BLOCK_BYTES } from './kquant.ts';

export type WeightDtype = 'f32' | 'f16' | 'q8' | 'q4' | 'q4k' | 'q5k' | 'q6k';
export type ScaleDtype = 'f16' | 'f32';
export const QUANT_GROUP = 32;

export interface EncodedWeights {
  /** The tensor's data bytes (w_q for q8/q4), length a multiple of 4. */
  data: Uint8Array;
  /** q8/q4 only: the scales bytes (w_s), length a multiple of 4. */
  scales?: Uint8Array;
}

export function groupsPerRow(cols: number): number {
  return Math.ceil(cols / QUANT_GROUP);
}

/** True for the encodings with a scales buffer (w_s): q8, q4 and q6k. */
export function isQuantized(dtype: WeightDtype): dtype is 'q8' | 'q4' | 'q6k' {
  return dtype === 'q8' || dtype === 'q4' || dtype === 'q6k';
}

/** Bytes of data and scales for a [rows, cols] tensor in `dtype`, each rounded up to 4. */
export function encodedByteLengths(
  dtype: WeightDtype,
  rows: number,
  cols: number,
  scaleDtype: ScaleDtype = 'f16',
): { data: number; scales: number } {
  const pad4 = (n: number) => Math.ceil(n / 4) * 4;
  const g = groupsPerRow(cols);
  switch (dtype) {
    case 'f32':
      return { data: rows * cols * 4, scales: 0 };
    case 'f16':
      return { data: pad4(rows * cols * 2), scales: 0 };
    case 'q8':
      return { data: rows * g * 32, scales: pad4(rows * g * (scaleDtype === 'f16' ? 2 : 4)) };
    case 'q4':
      return { data: rows * g * 16, scales: pad4(rows * g * (scaleDtype === 'f16' ? 2 : 4)) };
    default: {
      const blocks = rows * Math.ceil(cols / K_BLOCK);
      return { data: blocks * K_BLOCK_BYTES[dtype].data, scales: dtype === 'q6k' ? pad4(blocks * (scaleDtype === 'f16' ? 2 : 4)) : 0 };
    }
  }
}

// ---- encode / decode ----

function writeScale(view: DataView, index: number, scale: number, scaleDtype: ScaleDtype): number {
  if (scaleDtype === 'f16') {
    const bits = f32ToF16Bits(scale);
    view.setUint16(index * 2, bits, true);
    return f16BitsToF32(bits);
  }
  view.setFloat32(index * 4, scale, true);
  return Math.fround(scale);
}

function readScale(view: DataView, index: number, scaleDtype: ScaleDtype): number {
  return scaleDtype === 'f16' ? f16BitsToF32(view.getUint16(index * 2, true)) : view.getFloat32(index * 4, true);
}

/** Encodes a row-major [rows, cols] float tensor in `dtype` (1-D tensors: rows = 1). */
export function encodeWeights(
  values: Float32Array,
  rows: number,
  cols: number,
  dtype: WeightDtype,
  scaleDtype: ScaleDtype = 'f16',
): EncodedWeights {
  if (values.length !== rows * cols) throw new RangeError(`encodeWeights: ${values.length} values for shape [${rows}, ${cols}]`);
  if (isKDtype(dtype)) {
    if (cols % K_BLOCK !== 0) throw new RangeError(`encodeWeights: ${dtype} needs cols a multiple of ${K_BLOCK}, got ${cols}`);
    return encodeK(values, dtype, scaleDtype === 'f16');
  }
  const sizes = encodedByteLengths(dtype, rows, cols, scaleDtype);
  const data = new Uint8Array(sizes.data);
  if (dtype === 'f32') {
    new Float32Array(data.buffer).set(values);
    return { data };
  }
  if (dtype === 'f16') {
    const h = new Uint16Array(data.buffer, 0, rows * cols);
    for (let i = 0; i < h.length; i++) h[i] = f32ToF16Bits(values[i]);
    return { data };
  }
  const scales = new Uint8Array(sizes.scales);
  const sv = new DataView(scales.buffer);
  const g = groupsPerRow(cols);
  // Whole little-endian words at a time (every platform WebGPU runs on is little-endian).
  const words = new Uint32Array(data.buffer);
  const bytes = new Int8Array(data.buffer);
  for (let r = 0; r < rows; r++) {
    for (let gi = 0; gi < g; gi++) {
      const start = r * cols + gi * QUANT_GROUP;
      const n = Math.min(QUANT_GROUP, cols - gi * QUANT_GROUP);
      let amax = 0;
      let m = 0;
      for (let i = 0; i < n; i++) {
        const v = values[start + i];
        const a = v < 0 ? -v : v;
        if (a > amax) {
          amax = a;
          m = v;
        }
      }
      const group = r * g + gi;
      if (dtype === 'q8') {
        const d = writeScale(sv, group, amax / 127, scaleDtype);
        const inv = d ? 1 / d : 0;
        const base = group * 32;
        for (let i = 0; i < n; i++) {
          const q = Math.round(values[start + i] * inv);
          bytes[base + i] = q > 127 ? 127 : q < -127 ? -127 : q;
        }
      } else {
        const d = writeScale(sv, group, m / -8, scaleDtype);
        const inv = d ? 1 / d : 0;
        for (let w = 0; w < 4; w++) {
          let word = 0;
          for (let i = 0; i < 8; i++) {
            const k = w * 8 + i;
            let q = 8;
            if (k < n) {
              q = Math.round(values[start + k] * inv) + 8;
              q = q > 15 ? 15 : q < 0 ? 0 : q;
            }
            word |= q << (4 * i);
          }
          words[group * 4 + w] = word;
        }
      }
    }
  }
  return { data, scales };
}

/** Decodes `encodeWeights` output back to float32 [rows, cols]. */
export function decodeWeights(
  enc: EncodedWeights,
  rows: number,
  cols: number,
  dtype: WeightDtype,
  scaleDtype: ScaleDtype = 'f16',
): Float32Array {
  const out = new Float32Array(rows * cols);
  const { data } = enc;
  if (dtype === 'f32') {
    out.set(new Float32Array(data.buffer, data.byteOffset, rows * cols));
    return out;
  }
  if (isKDtype(dtype)) return decodeK(data, enc.scales, rows * cols, dtype, scaleDtype === 'f16');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (dtype === 'f16') {
    for (let i = 0; i < out.length; i++) out[i] = f16BitsToF32(view.getUint16(i * 2, true));
    return out;
  }
  if (!enc.scales) throw new RangeError(`decodeWeights: ${dtype} needs scales`);
  const sv = new DataView(enc.scales.buffer, enc.scales.byteOffset, enc.scales.byteLength);
  const g = groupsPerRow(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const gi = c >> 5;
      const i = c & 31;
      const d = readScale(sv, r * g + gi, scaleDtype);
      if (dtype === 'q8') {
        out[r * cols + c] = view.getInt8((r * g + gi) * 32 + i) * d;
      } else {
        const byte = data[(r * g + gi) * 16 + (i >> 1)];
        out[r * cols + c] = (((byte >> ((i & 1) * 4)) & 0xf) - 8) * d;
      }
    }
  }
  return out;
}
