/**
 * CPU dequantization of ggml tensor blocks (as GGUF stores them) to float32. Block layouts, all little-endian,
 * d/dmin/m are IEEE half:
 *   Q8_0 (32 values, 34 B):  d, int8 q[32];                       x = q * d
 *   Q4_0 (32 values, 18 B):  d, u8 qs[16];                        x[j] = (lo(qs[j]) - 8) d, x[j+16] = (hi(qs[j]) - 8) d
 *   Q4_1 (32 values, 20 B):  d, m, u8 qs[16];                     x[j] = lo(qs[j]) d + m, x[j+16] = hi(qs[j]) d + m
 *   Q4_K (256 values, 144 B): d, dmin, scales[12] (8 six-bit scale/min pairs), qs[128]
 *   Q5_K (256 values, 176 B): d, dmin, scales[12], qh[32] (fifth bits), qs[128]
 *   Q6_K (256 values, 210 B): ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], d
 * K-quants: each 256-value super-block is sub-blocks of 32 (Q4_K, Q5_K: x = d*sc*q - dmin*m) or 16 (Q6_K: x = d*sc*(q-32)).
 */
import { f16BitsToF32 } from './f16.ts';
import { decodeDense } from './tensor-views.ts';

export const DEQUANT_TYPES: Record<number, string> = { 0: 'F32', 1: 'F16', 30: 'BF16', 8: 'Q8_0', 2: 'Q4_0', 3: 'Q4_1', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K' };

/** Six-bit scale and min of sub-block j (0..7) from the 12 packed bytes at s[o..o+12) (Q4_K, Q5_K). */
function scaleMinK4(j: number, s: Uint8Array, o: number): [number, number] {
  if (j < 4) return [s[o + j] & 63, s[o + j + 4] & 63];
  return [(s[o + j + 4] & 0xf) | ((s[o + j - 4] >> 6) << 4), (s[o + j + 4] >> 4) | ((s[o + j] >> 6) << 4)];
}

/** Dequantizes `n` values of ggml type `type` from `src` (starting on a block boundary) into `out[outOffset..]`. */
export function dequantizeGgml(type: number, src: Uint8Array, n: number, out: Float32Array, outOffset = 0): void {
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const h = (o: number) => f16BitsToF32(v.getUint16(o, true));
  let y = outOffset;
  switch (type) {
    case 0:
    case 1:
    case 30:
      // Dense types: the bulk table/bit-shift decoder (an F16 7B checkpoint is 6.7e9 of these)
      out.set(decodeDense(type === 0 ? 'F32' : type === 1 ? 'F16' : 'BF16', src, n), y);
      return;
    case 8:
      for (let b = 0; b < n / 32; b++, y += 32) {
        const o = b * 34;
        const d = h(o);
        for (let j = 0; j < 32; j++) out[y + j] = v.getInt8(o + 2 + j) * d;
      }
      return;
    case 2:
      for (let b = 0; b < n / 32; b++, y += 32) {
        const o = b * 18;
        const d = h(o);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 2 + j];
          out[y + j] = ((q & 0xf) - 8) * d;
          out[y + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return;
    case 3:
      for (let b = 0; b < n / 32; b++, y += 32) {
        const o = b * 20;
        const d = h(o);
        const m = h(o + 2);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 4 + j];
          out[y + j] = (q & 0xf) * d + m;
          out[y + j + 16] = (q >> 4) * d + m;
        }
      }
      return;
    case 12:
    case 13: {
      const q5 = type === 13;
      const blockBytes = q5 ? 176 : 144;
      for (let b = 0; b < n / 256; b++) {
        const o = b * blockBytes;
        const d = h(o);
        const dmin = h(o + 2);
        const qh = o + 16; // Q5_K only
        let ql = o + (q5 ? 48 : 16);
        for (let j = 0, sub = 0; j < 256; j += 64, sub += 2, ql += 32) {
          const [sc1, m1] = scaleMinK4(sub, src, o + 4);
          const [sc2, m2] = scaleMinK4(sub + 1, src, o + 4);
          const d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
          // Sub-block `sub` takes the low nibbles of 32 bytes and bit `sub` of qh; sub + 1 the high nibbles, bit sub + 1.
          for (let l = 0; l < 32; l++) {
            const q = src[ql + l];
            const hi = q5 ? src[qh + l] : 0;
            out[y + l] = d1 * ((q & 0xf) + ((hi >> sub) & 1) * 16) - mm1;
            out[y + 32 + l] = d2 * ((q >> 4) + ((hi >> (sub + 1)) & 1) * 16) - mm2;
          }
          y += 64;
        }
      }
      return;
    }
    case 14:
      for (let b = 0; b < n / 256; b++) {
        const o = b * 210;
        const d = h(o + 208);
        for (let half = 0; half < 2; half++) {
          const ql = o + half * 64;
          const qh = o + 128 + half * 32;
          const sc = o + 192 + half * 8;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const hb = src[qh + l];
            const q1 = ((src[ql + l] & 0xf) | ((hb & 3) << 4)) - 32;
            const q2 = ((src[ql + l + 32] & 0xf) | (((hb >> 2) & 3) << 4)) - 32;
            const q3 = ((src[ql + l] >> 4) | (((hb >> 4) & 3) << 4)) - 32;
            const q4 = ((src[ql + l + 32] >> 4) | (((hb >> 6) & 3) << 4)) - 32;
            out[y + l] = d * v.getInt8(sc + is) * q1;
            out[y + l + 32] = d * v.getInt8(sc + is + 2) * q2;
            out[y + l + 64] = d * v.getInt8(sc + is + 4) * q3;
            out[y + l + 96] = d * v.getInt8(sc + is + 6) * q4;
          }
          y += 128;
        }
      }
      return;
  }
  throw new RangeError(`dequantizeGgml: unsupported ggml type ${type}`);
}
