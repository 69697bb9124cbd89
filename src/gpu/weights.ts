/**
 * Weight tensors on the GPU, in the encodings of shaders/README.md (src/formats/quant.ts).
 *
 * A [rows, cols] tensor is held as one or more row chunks, each in its own buffers, so that no buffer exceeds
 * the device's maxStorageBufferBindingSize. Each chunk is an independently encoded [chunk.rows, cols] tensor:
 * its data starts with row `rowStart` (for f16 with odd cols, the two-per-word packing restarts per chunk).
 */
import { KernelShapeError } from '../errors.ts';
import { isKDtype, K_BLOCK } from '../formats/kquant.ts';
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
  if (isKDtype(dtype) && cols % K_BLOCK !== 0) {
    throw new KernelShapeError('uploadWeight', `tensor ${name} has ${cols} cols; ${dtype} rows are whole blocks of ${K_BLOCK} values`);
  }
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
  if (isKDtype(w.dtype) && w.cols % K_BLOCK !== 0) throw new KernelShapeError(op, `${what}: ${w.dtype} rows are whole blocks of ${K_BLOCK} values`);
  let next = 0;
  for (const c of w.chunks) {
    if (c.rowStart !== next || c.rows <= 0) {
      throw new KernelShapeError(op, `${what}: chunk starting at row ${c.rowStart} (${c.rows} rows) should start at row ${next}; chunks must cover the rows in order`);
    }
    if (isQuantized(w.dtype) !== (c.scales !== undefined)) {
      throw new KernelShapeError(op, `${what}: chunk at row ${c.rowStart} ${c.scales ? 'has' : 'lacks'} scales; q8/q4/q6k chunks need them, f32/f16/q4k/q5k chunks have none`);
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

/**
 * Bytes of data and scales of `rows` rows when they end on a 32-bit word boundary, else null: chunks whose bytes
 * end mid-word (f16 data or f16 scales with an odd element count) cannot be laid end to end.
 */
function wholeWordBytes(w: GpuWeight, rows: number): { data: number; scales: number } | null {
  const scaleBytes = w.scaleDtype === 'f16' ? 2 : 4;
  const { data } = encodedByteLengths(w.dtype, rows, w.cols, w.scaleDtype);
  const halves = w.dtype === 'f16' ? rows * w.cols : 0; // f16 data rounds up to whole words
  const scaleCount = !isQuantized(w.dtype) ? 0 : w.dtype === 'q6k' ? rows * (w.cols / 256) : rows * Math.ceil(w.cols / 32);
  const scales = scaleCount * scaleBytes;
  if (halves % 2 !== 0) return null;
  return data % 4 === 0 && scales % 4 === 0 ? { data, scales } : null;
}

/**
 * The row-wise concatenation of weights with the same cols and encoding, as one weight: wq, wk and wv as one
 * [dim + 2 kvDim, dim] matrix, so that one matvec dispatch computes every row of all three. When the result fits
 * one buffer (the device's binding limit), the parts' chunks are copied into a single chunk on the GPU and the
 * parts' buffers are destroyed; otherwise the result lists the parts' chunks in order (one dispatch each, as
 * before) and keeps their buffers. Returns null when the parts differ in cols or encoding.
 */
export function concatRows(gpu: Gpu, name: string, parts: GpuWeight[]): GpuWeight | null {
  const [first] = parts;
  if (!parts.every((p) => p.dtype === first.dtype && p.scaleDtype === first.scaleDtype && p.cols === first.cols)) return null;
  const chunks: GpuWeightChunk[] = [];
  let rows = 0;
  for (const p of parts) {
    for (const c of p.chunks) chunks.push({ ...c, rowStart: rows + c.rowStart });
    rows += p.rows;
  }
  const joined: GpuWeight = { name, dtype: first.dtype, rows, cols: first.cols, scaleDtype: first.scaleDtype, chunks };
  const sizes = chunks.map((c) => wholeWordBytes(first, c.rows));
  const total = wholeWordBytes(first, rows);
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  if (chunks.length === 1 || !total || sizes.some((s) => !s) || total.data > limit || total.scales > limit) return joined;

  const data = gpu.storage(`${name}.w_q`, total.data);
  const scales = total.scales > 0 ? gpu.storage(`${name}.w_s`, total.scales) : undefined;
  const encoder = gpu.device.createCommandEncoder({ label: `concat.${name}` });
  let dataOffset = 0;
  let scaleOffset = 0;
  chunks.forEach((c, i) => {
    const s = sizes[i]!;
    encoder.copyBufferToBuffer(c.data, 0, data, dataOffset, s.data);
    if (scales && c.scales) encoder.copyBufferToBuffer(c.scales, 0, scales, scaleOffset, s.scales);
    dataOffset += s.data;
    scaleOffset += s.scales;
  });
  gpu.device.queue.submit([encoder.finish()]);
  // Destroying a buffer after the submit that reads it is valid: the copies complete first.
  for (const p of parts) destroyWeight(p);
  return { ...joined, chunks: [{ rowStart: 0, rows, data, scales }] };
}
