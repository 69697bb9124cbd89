/**
 * Weight tensors on the GPU, in the encodings of shaders/README.md (src/formats/quant.ts).
 *
 * A [rows, cols] tensor is held as one or more row chunks, each in its own buffers, so that no buffer exceeds
 * the device's maxStorageBufferBindingSize. Each chunk is an independently encoded [chunk.rows, cols] tensor:
 * its data starts with row `rowStart` (for f16 with odd cols, the two-per-word packing restarts per chunk).
 */
import { KernelShapeError } from '../errors.ts';
import { encodeWeights, encodedByteLengths, isQuantized, type ScaleDtype, type WeightDtype } from '../formats/quant.ts';
import type { Gpu } from './device.ts';

export interface GpuWeightChunk {
  /** First row of the tensor held by this chunk. */
  rowStart: number;
  rows: number;
  /** w_q: the encoded data of rows rowStart..rowStart+rows-1. */
  data: GPUBuffer;
  /** w_s: q8/q4 scales of the same rows. */
  scales?: GPUBuffer;
}

export interface GpuWeight {
  name: string;
  dtype: WeightDtype;
  rows: number;
  cols: number;
  /** Scale encoding of q8/q4 weights ('f16' for f32/f16 weights, where it is unused). */
  scaleDtype: ScaleDtype;
  /** Row chunks in order, covering rows 0..rows-1 without gaps. */
  chunks: GpuWeightChunk[];
}

/**
 * Encodes (src/formats/quant.ts) and uploads a [rows, cols] tensor, split into row chunks so that no buffer
 * exceeds maxBytes (default: the device's maxStorageBufferBindingSize). For tests, synthetic models, tools.
 */
export function uploadWeight(
  gpu: Gpu,
  name: string,
  values: Float32Array,
  rows: number,
  cols: number,
  dtype: WeightDtype,
  options: { scaleDtype?: ScaleDtype; maxChunkBytes?: number } = {},
): GpuWeight {
  const scaleDtype = options.scaleDtype ?? 'f16';
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new KernelShapeError('uploadWeight', `tensor ${name} has shape [${rows}, ${cols}]; both dims must be positive integers`);
  }
  if (values.length !== rows * cols) {
    throw new KernelShapeError('uploadWeight', `tensor ${name} has ${values.length} values, but shape [${rows}, ${cols}] needs ${rows * cols}`);
  }
  const maxBytes = options.maxChunkBytes ?? gpu.limits.maxStorageBufferBindingSize;
  const chunks: GpuWeightChunk[] = [];
  const plan = planChunks(name, dtype, rows, cols, scaleDtype, maxBytes);
  for (const { rowStart, rows: n } of plan) {
    const enc = encodeWeights(values.subarray(rowStart * cols, (rowStart + n) * cols), n, cols, dtype, scaleDtype);
    const label = plan.length === 1 ? name : `${name}.rows${rowStart}`;
    const chunk: GpuWeightChunk = { rowStart, rows: n, data: gpu.storage(`${label}.w_q`, enc.data) };
    if (enc.scales) chunk.scales = gpu.storage(`${label}.w_s`, enc.scales);
    chunks.push(chunk);
  }
  return { name, dtype, rows, cols, scaleDtype, chunks };
}

/** Row ranges of at most maxBytes of data and of scales each, in order. */
export function planChunks(
  name: string,
  dtype: WeightDtype,
  rows: number,
  cols: number,
  scaleDtype: ScaleDtype,
  maxBytes: number,
): { rowStart: number; rows: number }[] {
  const rowsPerChunk = rowsThatFit(dtype, cols, scaleDtype, maxBytes);
  if (rowsPerChunk < 1) {
    throw new KernelShapeError(
      'uploadWeight',
      `one row of tensor ${name} ([${rows}, ${cols}] ${dtype}) needs more than ${maxBytes} bytes; use a GPU with a larger maxStorageBufferBindingSize or a smaller dtype`,
    );
  }
  const out: { rowStart: number; rows: number }[] = [];
  for (let rowStart = 0; rowStart < rows; rowStart += rowsPerChunk) out.push({ rowStart, rows: Math.min(rowsPerChunk, rows - rowStart) });
  return out;
}

/** The largest row count whose data and scales each fit in maxBytes. */
function rowsThatFit(dtype: WeightDtype, cols: number, scaleDtype: ScaleDtype, maxBytes: number): number {
  const one = encodedByteLengths(dtype, 1, cols, scaleDtype);
  let n = Math.floor(maxBytes / Math.max(one.data, one.scales));
  while (n > 0) {
    const b = encodedByteLengths(dtype, n, cols, scaleDtype);
    if (b.data <= maxBytes && b.scales <= maxBytes) break;
    n--;
  }
  return n;
}

/** Bytes of data and scales the kernels read for this weight (for bandwidth figures). */
export function weightBytes(w: GpuWeight): number {
  const b = encodedByteLengths(w.dtype, w.rows, w.cols, w.scaleDtype);
  return b.data + (isQuantized(w.dtype) ? b.scales : 0);
}

/**
 * Checks a GpuWeight built elsewhere (from a package) is one the kernels can read: positive dims, chunks in order
 * without gaps, scales present exactly for q8/q4. `op` names the kernel in the error.
 */
export function checkWeight(op: string, w: GpuWeight): void {
  const what = `weight ${w.name} [${w.rows}, ${w.cols}] ${w.dtype}`;
  if (!Number.isInteger(w.rows) || !Number.isInteger(w.cols) || w.rows <= 0 || w.cols <= 0) {
    throw new KernelShapeError(op, `${what}: both dims must be positive integers`);
  }
  if (w.chunks.length === 0) throw new KernelShapeError(op, `${what} has no chunks; upload it before building the op`);
  let next = 0;
  for (const c of w.chunks) {
    if (c.rowStart !== next || c.rows <= 0) {
      throw new KernelShapeError(op, `${what}: chunk starting at row ${c.rowStart} (${c.rows} rows) should start at row ${next}; chunks must cover the rows in order`);
    }
    if (isQuantized(w.dtype) !== (c.scales !== undefined)) {
      throw new KernelShapeError(op, `${what}: chunk at row ${c.rowStart} ${c.scales ? 'has' : 'lacks'} scales; q8/q4 chunks need them, f32/f16 chunks have none`);
    }
    next += c.rows;
  }
  if (next !== w.rows) throw new KernelShapeError(op, `${what}: chunks cover ${next} rows, not ${w.rows}`);
}

export function destroyWeight(w: GpuWeight): void {
  for (const c of w.chunks) {
    c.data.destroy();
    c.scales?.destroy();
  }
}
