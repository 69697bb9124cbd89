/**
 * ggml's k-quant blocks (llama.cpp's Q4_K, Q5_K, Q6_K), kept as they are in a model package, and the lossless
 * re-layout of ggml's Q8_0 and Q4_0 blocks into our q8 and q4 (the same values, bit for bit).
 *
 * Package encodings (shaders/README.md), 256 values per super-block, cols a multiple of 256:
 *   q4k: each row is cols / 256 block_q4_K, byte for byte (144 B: d, dmin f16; scales[12]; qs[128]). No w_s.
 *   q5k: each row is cols / 256 block_q5_K, byte for byte (176 B: d, dmin; scales[12]; qh[32]; qs[128]). No w_s.
 *   q6k: each row is cols / 256 blocks of block_q6_K's ql[128], qh[64], int8 scales[16] (208 B, so every block
 *        starts on a 16-byte boundary), and w_s holds each block's d: the 210-byte ggml block split in two.
 *
 * `quantizeK` is a plain round-to-nearest quantizer into those blocks (for tests, synthetic models and tools: real
 * k-quant files come from llama.cpp, whose search for the scales is better); `dequantizeGgml` reads them back.
 */
import { dequantizeGgml } from './ggml-dequant.ts';
import { f16BitsToF32, f32ToF16Bits } from './f16.ts';

export type KDtype = 'q4k' | 'q5k' | 'q6k';
export const K_BLOCK = 256;
/** ggml type ids of the k-quants we keep. */
export const K_GGML_TYPE: Record<KDtype, number> = { q4k: 12, q5k: 13, q6k: 14 };
/** Bytes of one ggml block, and of the package's data part of it (q6k moves d into w_s). */
export const K_BLOCK_BYTES: Record<KDtype, { ggml: number; data: number }> = {
  q4k: { ggml: 144, data: 144 },
  q5k: { ggml: 176, data: 176 },
  q6k: { ggml: 210, data: 208 },
};

export function isKDtype(dtype: string): dtype is KDtype {
  return dtype === 'q4k' || dtype === 'q5k' || dtype === 'q6k';
}

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/**
 * Quantizes `values` (a whole number of 256-value blocks) into ggml blocks of `dtype` (the ggml byte layout,
 * 210-byte blocks for q6k).
 */
export function quantizeK(values: Float32Array, dtype: KDtype): Uint8Array {
  if (values.length % K_BLOCK !== 0) throw new RangeError(`quantizeK: ${values.length} values is not a whole number of ${K_BLOCK}-value blocks`);
  const nb = values.length / K_BLOCK;
  const size = K_BLOCK_BYTES[dtype].ggml;
  const out = new Uint8Array(nb * size);
  for (let b = 0; b < nb; b++) {
    const x = values.subarray(b * K_BLOCK, (b + 1) * K_BLOCK);
    const block = out.subarray(b * size, (b + 1) * size);
    if (dtype === 'q6k') quantizeQ6K(x, block);
    else quantizeQ45K(x, block, dtype === 'q5k');
  }
  return out;
}

function setHalf(b: Uint8Array, o: number, bits: number): void {
  b[o] = bits & 0xff;
  b[o + 1] = bits >> 8;
}

/** Q4_K / Q5_K: 8 sub-blocks of 32, x = d * sc * q - dmin * m with 6-bit sc, m and q < 16 (Q5_K: < 32). */
function quantizeQ45K(x: Float32Array, block: Uint8Array, five: boolean): void {
  const levels = five ? 31 : 15;
  const scale = new Float64Array(8);
  const min = new Float64Array(8);
  for (let j = 0; j < 8; j++) {
    let lo = 0;
    let hi = 0;
    for (let l = 0; l < 32; l++) {
      const v = x[32 * j + l];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    scale[j] = (hi - lo) / levels;
    min[j] = -lo;
  }
  const dBits = f32ToF16Bits(Math.max(...scale) / 63);
  const dminBits = f32ToF16Bits(Math.max(...min) / 63);
  const d = f16BitsToF32(dBits);
  const dmin = f16BitsToF32(dminBits);
  const sc = Array.from(scale, (s) => (d > 0 ? clamp(Math.round(s / d), 0, 63) : 0));
  const mn = Array.from(min, (m) => (dmin > 0 ? clamp(Math.round(m / dmin), 0, 63) : 0));
  setHalf(block, 0, dBits);
  setHalf(block, 2, dminBits);
  // scales[12]: sub-blocks j < 4 keep sc, m in the low 6 bits of bytes j, j + 4; sub-blocks 4..7 keep their low 4
  // bits in byte j + 8 (sc low nibble, m high nibble) and their top 2 bits in the top bits of bytes j - 4, j.
  for (let j = 0; j < 4; j++) {
    block[4 + j] = sc[j] | ((sc[j + 4] >> 4) << 6);
    block[8 + j] = mn[j] | ((mn[j + 4] >> 4) << 6);
    block[12 + j] = (sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4);
  }
  const qs = five ? 48 : 16;
  for (let j = 0; j < 8; j++) {
    const step = d * sc[j];
    const m = dmin * mn[j];
    for (let l = 0; l < 32; l++) {
      const q = step > 0 ? clamp(Math.round((x[32 * j + l] + m) / step), 0, levels) : 0;
      // Sub-blocks 2k and 2k + 1 share 32 bytes (low nibbles, high nibbles); Q5_K's fifth bit is bit j of qh[l].
      block[qs + (j >> 1) * 32 + l] |= j & 1 ? (q & 15) << 4 : q & 15;
      if (five) block[16 + l] |= (q >> 4) << j;
    }
  }
}

/** Q6_K: 16 sub-blocks of 16, x = d * sc * (q - 32) with int8 sc and q < 64. */
function quantizeQ6K(x: Float32Array, block: Uint8Array): void {
  const scale = new Float64Array(16);
  let amax = 0;
  let big = 0;
  for (let j = 0; j < 16; j++) {
    let m = 0;
    for (let l = 0; l < 16; l++) {
      const v = x[16 * j + l];
      if (Math.abs(v) > Math.abs(m)) m = v;
    }
    scale[j] = m / -32; // the value of largest magnitude maps to q = 0 exactly
    if (Math.abs(scale[j]) > amax) {
      amax = Math.abs(scale[j]);
      big = scale[j];
    }
  }
  const dBits = f32ToF16Bits(big / -128);
  const d = f16BitsToF32(dBits);
  setHalf(block, 208, dBits);
  for (let j = 0; j < 16; j++) {
    const sc = d !== 0 ? clamp(Math.round(scale[j] / d), -128, 127) : 0;
    block[192 + j] = sc & 0xff;
    const step = d * sc;
    for (let l = 0; l < 16; l++) {
      const e = 16 * j + l;
      const q = step !== 0 ? clamp(Math.round(x[e] / step) + 32, 0, 63) : 32;
      // Each half of 128: element l < 32 in the low nibble of ql[l] and bits 0-1 of qh[l]; + 32 in ql[l + 32] low,
      // qh bits 2-3; + 64 in ql[l] high, bits 4-5; + 96 in ql[l + 32] high, bits 6-7.
      const h = e >> 7;
      const k = e & 127;
      const quarter = k >> 5;
      const i = k & 31;
      block[h * 64 + i + (quarter & 1) * 32] |= quarter < 2 ? q & 15 : (q & 15) << 4;
      block[128 + h * 32 + i] |= (q >> 4) << (2 * quarter);
    }
  }
}

/** The package's data and w_s bytes of `blocks` ggml blocks of `dtype` (see the file comment). */
export function packageKBlocks(ggml: Uint8Array, dtype: KDtype, scaleF16 = true): { data: Uint8Array; scales?: Uint8Array } {
  if (dtype !== 'q6k') return { data: ggml };
  const nb = ggml.length / 210;
  const data = new Uint8Array(nb * 208);
  const scales = new Uint8Array(Math.ceil((nb * (scaleF16 ? 2 : 4)) / 4) * 4);
  const sv = new DataView(scales.buffer);
  for (let b = 0; b < nb; b++) {
    data.set(ggml.subarray(b * 210, b * 210 + 208), b * 208);
    const bits = ggml[b * 210 + 208] | (ggml[b * 210 + 209] << 8);
    if (scaleF16) sv.setUint16(b * 2, bits, true);
    else sv.setFloat32(b * 4, f16BitsToF32(bits), true);
  }
  return { data, scales };
}

/** The ggml blocks back from a package's data and w_s (the inverse of packageKBlocks). */
export function ggmlKBlocks(data: Uint8Array, scales: Uint8Array | undefined, dtype: KDtype, scaleF16 = true): Uint8Array {
  if (dtype !== 'q6k') return data;
  const nb = data.length / 208;
  const out = new Uint8Array(nb * 210);
  const sv = new DataView(scales!.buffer, scales!.byteOffset, scales!.byteLength);
  for (let b = 0; b < nb; b++) {
    out.set(data.subarray(b * 208, b * 208 + 208), b * 210);
    setHalf(out, b * 210 + 208, scaleF16 ? sv.getUint16(b * 2, true) : f32ToF16Bits(sv.getFloat32(b * 4, true)));
  }
  return out;
}

/** Encodes float values as `dtype` package bytes (quantizeK, then packageKBlocks). */
export function encodeK(values: Float32Array, dtype: KDtype, scaleF16 = true): { data: Uint8Array; scales?: Uint8Array } {
  return packageKBlocks(quantizeK(values, dtype), dtype, scaleF16);
}

/** Decodes `dtype` package bytes to float32 (values exactly as ggml's dequantization gives them). */
export function decodeK(data: Uint8Array, scales: Uint8Array | undefined, n: number, dtype: KDtype, scaleF16 = true): Float32Array {
  const out = new Float32Array(n);
  dequantizeGgml(K_GGML_TYPE[dtype], ggmlKBlocks(data, scales, dtype, scaleF16), n, out);
  return out;
}

/**
 * ggml Q8_0 / Q4_0 blocks (type 8 / 2) of `n` values as our q8 / q4 data and f16 scales: the same scale bits and
 * quants, so the values are identical. Q8_0's 32 int8 are q8's group as they are; Q4_0 keeps element j in the low
 * nibble of byte j and j + 16 in its high nibble, which q4 reorders to element 8w + i in bits 4i of word w.
 */
export function repackGgml32(type: 2 | 8, src: Uint8Array, n: number): { data: Uint8Array; scales: Uint8Array } {
  const nb = n / 32;
  const q8 = type === 8;
  const blockBytes = q8 ? 34 : 18;
  const data = new Uint8Array(nb * (q8 ? 32 : 16));
  const scales = new Uint8Array(Math.ceil((nb * 2) / 4) * 4);
  const words = new Uint32Array(data.buffer);
  for (let b = 0; b < nb; b++) {
    const o = b * blockBytes;
    scales[2 * b] = src[o];
    scales[2 * b + 1] = src[o + 1];
    if (q8) {
      data.set(src.subarray(o + 2, o + 34), b * 32);
      continue;
    }
    for (let w = 0; w < 4; w++) {
      let word = 0;
      for (let i = 0; i < 8; i++) {
        const e = 8 * w + i;
        const byte = src[o + 2 + (e & 15)];
        word |= (e < 16 ? byte & 15 : byte >> 4) << (4 * i);
      }
      words[b * 4 + w] = word >>> 0;
    }
  }
  return { data, scales };
}
