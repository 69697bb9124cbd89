/**
 * Hand-built ggml blocks with known values: each builder picks integer quants and scales from a seeded generator,
 * packs them the way llama.cpp's ggml-quants lays the block out, and computes the values they stand for in float64
 * from the chosen numbers (never by reading the bytes back).
 */
import { f32ToF16Bits, f16BitsToF32 } from '../../src/formats/f16.ts';

export { rng } from '../helpers/random.ts';

export interface Blocks {
  bytes: Uint8Array;
  expected: Float64Array;
}

/** A half-precision value exactly (so the scale in the block is the scale in the reference). */
const half = (x: number) => f16BitsToF32(f32ToF16Bits(x));
const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

function setHalf(b: Uint8Array, o: number, v: number) {
  const h = f32ToF16Bits(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
}

export const builders: Record<string, { type: number; blockSize: number; build(r: () => number, nBlocks: number): Blocks }> = {
  Q8_0: {
    type: 8, blockSize: 32,
    build(r, nb) {
      const bytes = new Uint8Array(nb * 34);
      const expected = new Float64Array(nb * 32);
      for (let b = 0; b < nb; b++) {
        const d = half(r() * 0.1 + 0.001);
        setHalf(bytes, b * 34, d);
        for (let j = 0; j < 32; j++) {
          const q = j === 0 ? -128 : j === 1 ? 127 : int(r, -128, 127);
          bytes[b * 34 + 2 + j] = q & 0xff;
          expected[b * 32 + j] = q * d;
        }
      }
      return { bytes, expected };
    },
  },
  Q4_0: {
    type: 2, blockSize: 32,
    build(r, nb) {
      const bytes = new Uint8Array(nb * 18);
      const expected = new Float64Array(nb * 32);
      for (let b = 0; b < nb; b++) {
        const d = half(r() - 0.5);
        setHalf(bytes, b * 18, d);
        for (let j = 0; j < 32; j++) {
          const q = j === 0 ? 0 : j === 31 ? 15 : int(r, 0, 15);
          // element j < 16 in the low nibble of byte j, element j + 16 in its high nibble
          bytes[b * 18 + 2 + (j % 16)] |= j < 16 ? q : q << 4;
          expected[b * 32 + j] = (q - 8) * d;
        }
      }
      return { bytes, expected };
    },
  },
  Q4_1: {
    type: 3, blockSize: 32,
    build(r, nb) {
      const bytes = new Uint8Array(nb * 20);
      const expected = new Float64Array(nb * 32);
      for (let b = 0; b < nb; b++) {
        const d = half(0.1 + r() * 0.05);
        const m = half(-0.5 - r() * 0.2);
        setHalf(bytes, b * 20, d);
        setHalf(bytes, b * 20 + 2, m);
        for (let j = 0; j < 32; j++) {
          const q = int(r, 0, 15);
          bytes[b * 20 + 4 + (j % 16)] |= j < 16 ? q : q << 4;
          expected[b * 32 + j] = q * d + m;
        }
      }
      return { bytes, expected };
    },
  },
  Q4_K: { type: 12, blockSize: 256, build: (r, nb) => buildK45(r, nb, false) },
  Q5_K: { type: 13, blockSize: 256, build: (r, nb) => buildK45(r, nb, true) },
  Q6_K: {
    type: 14, blockSize: 256,
    build(r, nb) {
      const bytes = new Uint8Array(nb * 210);
      const expected = new Float64Array(nb * 256);
      for (let b = 0; b < nb; b++) {
        const o = b * 210;
        const d = half(r() * 0.01 + 0.0001);
        setHalf(bytes, o + 208, d);
        const sc = Array.from({ length: 16 }, (_, i) => (i === 0 ? -128 : i === 1 ? 127 : int(r, -128, 127)));
        sc.forEach((s, i) => (bytes[o + 192 + i] = s & 0xff));
        for (let e = 0; e < 256; e++) {
          const q = e === 0 ? 0 : e === 255 ? 63 : int(r, 0, 63);
          expected[b * 256 + e] = d * sc[e >> 4] * (q - 32);
          // Each half of 128: l < 32 at ql[l] low / qh[l] bits 0-1; +32 at ql[l+32] low / bits 2-3;
          // +64 at ql[l] high / bits 4-5; +96 at ql[l+32] high / bits 6-7.
          const halfIdx = e >> 7;
          const k = e & 127;
          const l = k & 31;
          const quarter = k >> 5;
          const qlByte = o + halfIdx * 64 + l + (quarter & 1) * 32;
          bytes[qlByte] |= quarter < 2 ? q & 15 : (q & 15) << 4;
          bytes[o + 128 + halfIdx * 32 + l] |= (q >> 4) << (2 * quarter);
        }
      }
      return { bytes, expected };
    },
  },
};

/** Q4_K / Q5_K: 8 sub-blocks of 32 with six-bit scale and min, x = d * sc * q - dmin * m. */
function buildK45(r: () => number, nb: number, five: boolean): Blocks {
  const size = five ? 176 : 144;
  const bytes = new Uint8Array(nb * size);
  const expected = new Float64Array(nb * 256);
  for (let b = 0; b < nb; b++) {
    const o = b * size;
    const d = half(r() * 0.01 + 0.0001);
    const dmin = half(r() * 0.01);
    setHalf(bytes, o, d);
    setHalf(bytes, o + 2, dmin);
    const sc = Array.from({ length: 8 }, (_, i) => (i === 7 ? 63 : int(r, 0, 63)));
    const mn = Array.from({ length: 8 }, (_, i) => (i === 6 ? 63 : int(r, 0, 63)));
    // 12 scale bytes: j < 4 keep sc[j], mn[j] in the low 6 bits of bytes j, j+4; sub-blocks 4..7 keep their low
    // 4 bits in byte j+8 (scale low nibble, min high nibble) and their top 2 bits in the top of bytes j, j+4.
    for (let j = 0; j < 4; j++) {
      bytes[o + 4 + j] = sc[j] | ((sc[j + 4] >> 4) << 6);
      bytes[o + 4 + j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
      bytes[o + 4 + j + 8] = (sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4);
    }
    const qsBase = o + (five ? 48 : 16);
    for (let e = 0; e < 256; e++) {
      const sub = e >> 5;
      const l = e & 31;
      const q = five ? (e === 0 ? 31 : int(r, 0, 31)) : int(r, 0, 15);
      expected[b * 256 + e] = d * sc[sub] * q - dmin * mn[sub];
      // Sub-blocks 2k and 2k+1 share 32 bytes: low nibbles then high nibbles; Q5_K's fifth bit is bit `sub` of qh[l].
      bytes[qsBase + (sub >> 1) * 32 + l] |= sub & 1 ? (q & 15) << 4 : q & 15;
      if (five) bytes[o + 16 + l] |= (q >> 4) << sub;
    }
  }
  return { bytes, expected };
}

/**
 * ggml Q8_0 (type 8) or Q4_0 (type 2) blocks of `values` by ggml's reference rounding (Q8_0: d = amax / 127; Q4_0:
 * d = m / -8 for the value m of largest magnitude, element j in the low nibble of byte j, j + 16 in its high
 * nibble).
 */
export function quantizeGgml32(type: 2 | 8, values: Float32Array): Uint8Array {
  const nb = values.length / 32;
  const size = type === 8 ? 34 : 18;
  const bytes = new Uint8Array(nb * size);
  for (let b = 0; b < nb; b++) {
    const x = values.subarray(b * 32, b * 32 + 32);
    let m = 0;
    for (const v of x) if (Math.abs(v) > Math.abs(m)) m = v;
    const d = half(type === 8 ? Math.abs(m) / 127 : m / -8);
    setHalf(bytes, b * size, d);
    const inv = d ? 1 / d : 0;
    for (let j = 0; j < 32; j++) {
      if (type === 8) {
        bytes[b * size + 2 + j] = Math.max(-127, Math.min(127, Math.round(x[j] * inv))) & 0xff;
      } else {
        const q = Math.max(0, Math.min(15, Math.round(x[j] * inv) + 8));
        bytes[b * size + 2 + (j % 16)] |= j < 16 ? q : q << 4;
      }
    }
  }
  return bytes;
}
