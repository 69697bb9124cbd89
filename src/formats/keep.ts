/**
 * `convert --quant keep`: a GGUF's quantized matrices go into the package with the values they have in the file,
 * bit for bit, instead of being dequantized and quantized again. Q4_K, Q5_K and Q6_K blocks become q4k, q5k and q6k
 * (kquant.ts: the blocks as they are; q6k's d moved next to them); Q8_0 and Q4_0 become q8 and q4 (the same scale
 * bits and quants, only laid out as our kernels read them); F16 stays f16; F32 and BF16 become f32. Vectors are f32
 * as always. Any other type (Q4_1, Q5_0, ...) has no encoding that holds its values exactly, so keep refuses it and
 * names the --quant that requantizes it.
 */
import { ConvertOptionsError, ModelFormatError } from '../errors.ts';
import type { Checkpoint, CheckpointTensor } from './checkpoint.ts';
import { K_BLOCK_BYTES, packageKBlocks, repackGgml32 } from './kquant.ts';
import { f16BitsToF32 } from './f16.ts';
import { encodeWeights, type EncodedWeights, type WeightDtype } from './quant.ts';

/** ggml type id -> the package encoding that keeps its values. */
const KEPT: Record<number, WeightDtype> = { 0: 'f32', 1: 'f16', 30: 'f32', 8: 'q8', 2: 'q4', 12: 'q4k', 13: 'q5k', 14: 'q6k' };

/** True when a checkpoint holds quantized GGUF matrices: convert then keeps them by default. */
export function hasQuantizedGgufTensors(ckpt: Checkpoint): boolean {
  return [...ckpt.tensors.values()].some((t) => t.ggmlType !== undefined && t.ggmlType !== 0 && t.ggmlType !== 1 && t.ggmlType !== 30);
}

/** How a tensor is kept: its encoding, and a reader of rows in it. */
export interface Kept {
  dtype: WeightDtype;
  read(rowStart: number, rows: number): Promise<EncodedWeights>;
}

/**
 * The encoding that keeps matrix `t` of `file` as it is stored. Throws ConvertOptionsError for a checkpoint that is
 * not a GGUF, or a type with no exact encoding.
 */
export function keptTensor(t: CheckpointTensor, file: string): Kept {
  const type = t.ggmlType;
  const tensor = t.sourceName ?? t.name;
  const where = `${file}: tensor ${tensor}`;
  if (type === undefined || !t.readBlocks) {
    throw new ConvertOptionsError(`${where} is ${t.sourceDtype}; --quant keep keeps a GGUF's own blocks, so use --quant q4, q8, f16 or f32 for this checkpoint`);
  }
  const dtype = KEPT[type];
  if (!dtype) {
    throw new ConvertOptionsError(`${where} is ${t.sourceDtype}, which no package encoding holds exactly, so --quant keep cannot keep it; use --quant q8 (or q4) to requantize it`);
  }
  const [, cols] = t.shape;
  const readBlocks = t.readBlocks.bind(t);
  return {
    dtype,
    async read(rowStart, rows) {
      if (dtype === 'f32' || dtype === 'f16') return encodeWeights(await t.readRows(rowStart, rows), rows, cols, dtype);
      const raw = await readBlocks(rowStart, rows);
      checkScales(raw, type, rowStart, cols, file, tensor);
      return dtype === 'q8' || dtype === 'q4' ? repackGgml32(type as 2 | 8, raw, rows * cols) : packageKBlocks(raw, dtype as 'q4k' | 'q5k' | 'q6k');
    },
  };
}

/**
 * Refuses blocks whose f16 scales (d, and dmin for Q4_K/Q5_K) are NaN or infinite: a corrupt weight would
 * otherwise poison every token silently, as package-writer.ts checks for requantized tensors.
 */
function checkScales(raw: Uint8Array, type: number, rowStart: number, cols: number, file: string, tensor: string): void {
  const [blockValues, blockBytes, offsets] =
    type === 8 ? [32, 34, [0]] : type === 2 ? [32, 18, [0]] : type === 14 ? [256, K_BLOCK_BYTES.q6k.ggml, [208]] : [256, type === 12 ? 144 : 176, [0, 2]];
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let o = 0; o < raw.byteLength; o += blockBytes) {
    for (const at of offsets) {
      const s = f16BitsToF32(v.getUint16(o + at, true));
      if (!Number.isFinite(s)) {
        const row = rowStart + Math.floor(((o / blockBytes) * blockValues) / cols);
        throw new ModelFormatError(file, `row ${row} has a block scale of ${s}; the weights are corrupt, download the file again`, tensor);
      }
    }
  }
}
