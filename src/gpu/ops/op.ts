import { KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';
import type { GpuWeight } from '../weights.ts';
import type { FoldedNorm } from './rmsnorm.ts';
/** A dispatch with its pipeline and bind group fixed at load time; encoding it per token allocates nothing. */
export interface BoundOp {
  /**
   * Records the dispatch. `rows` (when the op takes it) is the number of tokens in this step; `pos`, the step's
   * first position, lets an op that reads it from the step uniform also size its dispatch by it (attention).
   */
  encode(pass: GPUComputePassEncoder, rows?: number, pos?: number): void;
}

/** One field of a uniform struct: a u32, i32 or f32 in a 4-byte slot. */
export type UniformField = { u32: number } | { f32: number } | { i32: number };

/** Packs uniform fields (in declaration order) into 4-byte slots. */
export function uniformData(fields: UniformField[]): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(buf);
  fields.forEach((f, i) => {
    if ('u32' in f) view.setUint32(i * 4, f.u32, true);
    else if ('i32' in f) view.setInt32(i * 4, f.i32, true);
    else view.setFloat32(i * 4, f.f32, true);
  });
  return buf;
}

/** An op's params: a uniform buffer holding `fields` (uniformData), written once at load. */
export function paramsUniform(gpu: Gpu, label: string, fields: UniformField[]): GPUBuffer {
  return gpu.uniform(label, new Uint8Array(uniformData(fields)));
}

/** The label of chunk i of `w`'s bind groups: `label` itself for a weight in one chunk. */
export function chunkLabel(label: string, w: GpuWeight, i: number): string {
  return w.chunks.length > 1 ? `${label}.chunk${i}` : label;
}

/**
 * How a matrix-vector / matrix-matrix op writes y (the `mode` of shaders/matvec_*.wgsl, matmul*.wgsl):
 * by default it stores W x; `accumulate` adds W x into y (the residual stream); `gate` stores silu(y) * W x, the
 * SwiGLU gate of the Llama FFN, when y already holds W1 x and the op's weight is W3; `up` stores
 * silu(W x) * (up x) in one dispatch, the op's weight being W1 and `up` W3 (matrix-vector ops only; see swigluPair).
 */
export interface LinearOutput {
  accumulate?: boolean;
  gate?: boolean;
  up?: GpuWeight;
  /**
   * With `accumulate` (decode): also write the new y times g, and partial sums of its squares, into this norm for
   * the next op to read as its normalized input (FoldedNorm).
   */
  normOut?: FoldedNorm;
  /**
   * Where the rows land: row r of the weight is written to y[t * yStride + rowOffset + r] for token t (default
   * rowOffset 0, yStride the weight's rows). Several weights can so fill one buffer side by side (wq, wk and wv
   * into the qkv rows of each token).
   */
  rowOffset?: number;
  yStride?: number;
}

/** The y row stride and the offset of the weight's first row in it, checked against the weight's rows. */
export function outputPlacement(label: string, rows: number, o: LinearOutput): { rowOffset: number; yStride: number } {
  const rowOffset = o.rowOffset ?? 0;
  const yStride = o.yStride ?? rows;
  if (!Number.isInteger(rowOffset) || rowOffset < 0 || !Number.isInteger(yStride) || rowOffset + rows > yStride) {
    throw new KernelShapeError('linear', `${label}: ${rows} rows at offset ${rowOffset} do not fit a y row of ${yStride}`);
  }
  return { rowOffset, yStride };
}

export function outputMode(label: string, o: LinearOutput): number {
  if ([o.accumulate, o.gate, o.up].filter(Boolean).length > 1) throw new KernelShapeError('linear', `${label}: accumulate, gate and up are exclusive`);
  if (o.normOut && !o.accumulate) throw new KernelShapeError('linear', `${label}: normOut folds the norm of the residual stream, so it needs accumulate`);
  return o.gate ? 2 : o.accumulate ? 1 : 0;
}

/**
 * True when `w` (W1) and `up` (W3) can run as one SwiGLU dispatch (LinearOutput.up): the same shape, encoding and
 * row chunks, so each chunk of W1 pairs with the chunk of W3 holding the same rows.
 */
export function swigluPair(w: GpuWeight, up: GpuWeight): boolean {
  return (
    w.dtype === up.dtype &&
    w.scaleDtype === up.scaleDtype &&
    w.rows === up.rows &&
    w.cols === up.cols &&
    w.chunks.length === up.chunks.length &&
    w.chunks.every((c, i) => c.rowStart === up.chunks[i].rowStart && c.rows === up.chunks[i].rows)
  );
}

/** x bound as array<vec4f>: its size rounded down to whole vec4s. */
export function vec4View(x: GPUBuffer): GPUBufferBinding {
  return { buffer: x, size: Math.floor(x.size / 16) * 16 };
}

/**
 * One bind group per chunk of `w` for the matrix kernels that share matvec's layout: the `xs` bindings, the
 * chunk's data and scales, the same of `output.up` (or the chunk's again: the kernels bind U always and read it
 * only with SWIGLU), y, the FoldedNorm written (output.normOut, else a placeholder), and params (rows, cols,
 * row_offset, mode, y_stride from `output`; norm_parts and norm_eps of `normIn`, the FoldedNorm x is read from;
 * norm_dim of output.normOut).
 */
export function chunkBindGroups(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  w: GpuWeight,
  label: string,
  xs: (GPUBuffer | GPUBufferBinding)[],
  y: GPUBuffer,
  output: LinearOutput,
  normIn?: FoldedNorm,
): { bindGroup: GPUBindGroup; rows: number }[] {
  const mode = outputMode(label, output);
  const { rowOffset, yStride } = outputPlacement(label, w.rows, output);
  const { up } = output;
  if (up && !swigluPair(w, up)) {
    throw new KernelShapeError('matvec', `${label}: ${w.name} and ${up.name} differ in shape, encoding or row chunks; run them as two dispatches`);
  }
  return w.chunks.map((chunk, i) => {
    const params = paramsUniform(gpu, `${label}.params${i}`, [
      { u32: chunk.rows },
      { u32: w.cols },
      { u32: rowOffset + chunk.rowStart },
      { u32: mode },
      { u32: yStride },
      { u32: normIn?.parts ?? 0 },
      { f32: normIn?.eps ?? 0 },
      { u32: output.normOut?.dim ?? 0 },
    ]);
    const resources: (GPUBuffer | GPUBufferBinding)[] = [...xs, chunk.data];
    if (chunk.scales) resources.push(chunk.scales);
    const u = up ? up.chunks[i] : chunk;
    resources.push(u.data);
    if (u.scales) resources.push(u.scales);
    resources.push(y, output.normOut?.buffer ?? gpu.unusedStorage, params);
    return { bindGroup: gpu.bindGroup(chunkLabel(label, w, i), pipeline, resources), rows: chunk.rows };
  });
}

/**
 * Lays `count` workgroups out as (x, y) within the per-dimension limit; shaders index them as
 * wg.y * num_workgroups.x + wg.x and ignore the few past `count`.
 */
export function grid(gpu: Gpu, count: number, what: string): [number, number] {
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (count <= max) return [count, 1];
  const ny = Math.ceil(count / max);
  if (ny > max) throw new KernelShapeError('dispatch', `${what} needs ${count} workgroups, more than this GPU can dispatch`);
  return [Math.ceil(count / ny), ny];
}
