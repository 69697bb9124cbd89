/**
 * Row-readable views over dense tensors stored in a checkpoint (safetensors, Flax): plain row-major storage, a
 * transposed view for Flax kernels stored (in, out), and the view that undoes Hugging Face's rotate-half
 * permutation of q/k rows so packages use interleaved RoPE pairs.
 */
import { ModelFormatError } from '../errors.ts';
import type { CheckpointTensor } from './checkpoint.ts';
import { f16BitsToF32 } from './f16.ts';
import type { ByteSource } from './source.ts';

export type DenseDtype = 'F32' | 'F16' | 'BF16';
export const DENSE_ITEM_BYTES: Record<DenseDtype, number> = { F32: 4, F16: 2, BF16: 2 };

let f16Table: Float32Array | undefined;

/** Little-endian F32/F16/BF16 bytes to float32. */
export function decodeDense(dtype: DenseDtype, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  if (dtype === 'F32') {
    out.set(new Float32Array(bytes.slice(0, n * 4).buffer));
    return out;
  }
  const h = new Uint16Array(bytes.slice(0, n * 2).buffer);
  if (dtype === 'F16') {
    if (!f16Table) {
      f16Table = new Float32Array(65536);
      for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToF32(i);
    }
    for (let i = 0; i < n; i++) out[i] = f16Table[h[i]];
  } else {
    // bfloat16 is the top half of a float32
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = h[i] << 16;
  }
  return out;
}

/** A row-major [rows, cols] (or [n]) dense tensor at `offset` of `source`. */
export function denseTensor(source: ByteSource, name: string, offset: number, shape: number[], dtype: DenseDtype): CheckpointTensor {
  const cols = shape[shape.length - 1];
  const nRows = shape.length === 2 ? shape[0] : 1;
  const item = DENSE_ITEM_BYTES[dtype];
  return {
    name,
    shape,
    sourceDtype: dtype,
    async readRows(rowStart, rows) {
      checkRows(name, rowStart, rows, nRows);
      return decodeDense(dtype, await source.read(offset + rowStart * cols * item, rows * cols * item), rows * cols);
    },
  };
}

function checkRows(name: string, rowStart: number, rows: number, nRows: number) {
  if (!Number.isInteger(rowStart) || !Number.isInteger(rows) || rowStart < 0 || rows < 0 || rowStart + rows > nRows) {
    throw new RangeError(`${name}: rows [${rowStart}, ${rowStart + rows}) outside [0, ${nRows})`);
  }
}

/** Column block cached by the transposed view: at most this many float32 (64 MiB). */
const TRANSPOSE_CACHE_ELEMENTS = 16 << 20;
/** Bytes of stored rows read per group. */
const BAND_BYTES = 16 << 20;
/** Row reads issued at once when a block takes part of each stored row. */
const READS_IN_FLIGHT = 64;
const TILE = 64;

let activeBlockRelease: (() => void) | null = null;
function releaseActiveBlock() {
  activeBlockRelease?.();
  activeBlockRelease = null;
}

/**
 * The transpose of a row-major stored [inDim, outDim] matrix (Flax Dense kernels), as [outDim, inDim] rows.
 * Rows of the transpose are columns of the stored matrix, so reads go in bands of stored rows and a block of
 * columns is transposed and cached; the converter reads rows in order, so each band is read about once.
 */
export function transposedTensor(
  source: ByteSource,
  name: string,
  offset: number,
  storedShape: [number, number],
  dtype: DenseDtype,
  limits: { cacheElements?: number; bandBytes?: number } = {},
): CheckpointTensor {
  const [inDim, outDim] = storedShape;
  const cacheElements = limits.cacheElements ?? TRANSPOSE_CACHE_ELEMENTS;
  const bandBytes = limits.bandBytes ?? BAND_BYTES;
  const item = DENSE_ITEM_BYTES[dtype];
  let cache: { c0: number; c1: number; data: Float32Array } | null = null;
  const release = () => {
    cache = null;
  };
  const load = async (c0: number, c1: number) => {
    const w = c1 - c0;
    // One cached block in the whole process: a 7B Flax checkpoint has hundreds of kernels, and a block per kernel
    // kept alive after its conversion would add up to the whole model.
    releaseActiveBlock();
    activeBlockRelease = release;
    const data = new Float32Array(w * inDim);
    // Groups of stored rows: one contiguous read when the block spans whole rows, otherwise one read of the
    // block's w columns per row (reading whole rows would read a wide matrix outDim / w times over).
    const group = Math.max(1, Math.floor(bandBytes / (w * item)));
    for (let k0 = 0; k0 < inDim; k0 += group) {
      const g = Math.min(group, inDim - k0);
      let vals: Float32Array;
      if (w === outDim) {
        vals = decodeDense(dtype, await source.read(offset + k0 * outDim * item, g * w * item), g * w);
      } else {
        const joined = new Uint8Array(g * w * item);
        for (let i0 = 0; i0 < g; i0 += READS_IN_FLIGHT) {
          const n = Math.min(READS_IN_FLIGHT, g - i0);
          const parts = await Promise.all(
            Array.from({ length: n }, (_, i) => source.read(offset + ((k0 + i0 + i) * outDim + c0) * item, w * item)),
          );
          parts.forEach((b, i) => joined.set(b, (i0 + i) * w * item));
        }
        vals = decodeDense(dtype, joined, g * w);
      }
      // vals is [g, w]; transpose it into columns k0..k0+g of data [w, inDim], in tiles that stay in cache.
      for (let cb = 0; cb < w; cb += TILE) {
        for (let ib = 0; ib < g; ib += TILE) {
          const cEnd = Math.min(w, cb + TILE);
          const iEnd = Math.min(g, ib + TILE);
          for (let c = cb; c < cEnd; c++) {
            const dst = c * inDim + k0;
            for (let i = ib; i < iEnd; i++) data[dst + i] = vals[i * w + c];
          }
        }
      }
    }
    cache = { c0, c1, data };
    return cache;
  };
  return {
    name,
    shape: [outDim, inDim],
    sourceDtype: dtype,
    async readRows(rowStart, rows) {
      checkRows(name, rowStart, rows, outDim);
      let c = cache;
      if (!c || rowStart < c.c0 || rowStart + rows > c.c1) {
        const width = Math.max(rows, Math.floor(cacheElements / inDim));
        c = await load(rowStart, Math.min(outDim, rowStart + width));
      }
      const out = c.data.slice((rowStart - c.c0) * inDim, (rowStart - c.c0 + rows) * inDim);
      if (rowStart + rows === outDim) releaseActiveBlock(); // read to the end: the converter is done with it
      return out;
    },
  };
}

/**
 * Undoes Hugging Face's q/k permutation. convert_llama_weights_to_hf stores W_hf = permute(W), where within each
 * head of size hd, interleaved row 2i + j moves to row j * hd/2 + i (j in {0, 1}, i < hd/2). So interleaved row
 * h*hd + 2i + j reads Hugging Face row h*hd + j*hd/2 + i. Reads whole heads around the requested rows.
 */
export function unpermuteRotary(t: CheckpointTensor, nHeads: number, file: string): CheckpointTensor {
  const [rows, cols] = t.shape;
  if (t.shape.length !== 2 || rows % nHeads !== 0 || (rows / nHeads) % 2 !== 0) {
    throw new ModelFormatError(file, `shape [${t.shape}] cannot be split into ${nHeads} heads of even size`, t.name);
  }
  const hd = rows / nHeads;
  return {
    ...t,
    async readRows(rowStart, n) {
      checkRows(t.name, rowStart, n, rows);
      const h0 = Math.floor(rowStart / hd);
      const h1 = Math.ceil((rowStart + n) / hd);
      const src = await t.readRows(h0 * hd, (h1 - h0) * hd);
      const out = new Float32Array(n * cols);
      for (let r = 0; r < n; r++) {
        const row = rowStart + r;
        const local = row % hd;
        const srcRow = Math.floor(row / hd) * hd + (local % 2) * (hd / 2) + (local >> 1) - h0 * hd;
        out.set(src.subarray(srcRow * cols, (srcRow + 1) * cols), r * cols);
      }
      return out;
    },
  };
}
