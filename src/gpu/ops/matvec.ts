import { KernelShapeError } from '../../errors.ts';
import { isQuantized } from '../../formats/quant.ts';
import type { Gpu } from '../device.ts';
import { checkWeight, type GpuWeight } from '../weights.ts';
import { LanesMatMul, lanesKernelFits } from './matmul-lanes.ts';
import { outputMode, outputPlacement, swigluPair, uniformData, type BoundOp, type LinearOutput } from './op.ts';
import { FoldedNorm } from './rmsnorm.ts';

/** Rows per workgroup (fixed in shaders/matvec_*.wgsl). */
const ROWS = 4;
/**
 * Threads per workgroup. CPU adapters (lavapipe, SwiftShader) run a workgroup on one thread, SIMD across
 * invocations; there 16 threads that each take more of the row measured fastest (q4 at 7B shapes on lavapipe:
 * ~1.5x the bytes per CPU-second of 64). GPUs want wider workgroups to keep their SIMD units full.
 */
export function matvecWorkgroupSize(gpu: Gpu): number {
  return gpu.summary.isFallbackAdapter ? 16 : 64;
}

/**
 * Matrix x vector for one token (decode): y[r] (+)= sum_c W[r, c] * x[c], x [cols] f32, y [rows] f32
 * (shaders/matvec_<dtype>.wgsl; on CPU adapters with 8-lane subgroups, q4 weights run
 * shaders/matmul_lanes_q4.wgsl, see lanesKernelFits). One dispatch per row chunk of the weight, each writing its
 * rows of y.
 */
export class MatVec {
  private readonly pipeline: GPUComputePipeline | undefined;
  private readonly lanes: LanesMatMul | undefined;
  /** The kernel this op runs. */
  readonly kernel: 'matvec' | 'lanes';

  constructor(
    private readonly gpu: Gpu,
    readonly weight: GpuWeight,
    /** 'matvec' or 'lanes' forces a kernel (tests, benchmarks); by default the adapter decides. */
    options: { kernel?: 'matvec' | 'lanes' } = {},
  ) {
    checkWeight('matvec', weight);
    if (weight.cols < 4) {
      throw new KernelShapeError('matvec', `weight ${weight.name} has ${weight.cols} cols; the kernel reads x as vec4s and needs cols >= 4`);
    }
    this.kernel = options.kernel ?? (lanesKernelFits(gpu, weight) ? 'lanes' : 'matvec');
    if (this.kernel === 'lanes') this.lanes = new LanesMatMul(gpu, weight, 1);
    else this.pipeline = matvecPipeline(gpu, weight);
  }

  /**
   * Rows of y one workgroup writes in accumulate mode: a FoldedNorm this op writes (LinearOutput.normOut) holds one
   * partial sum per this many rows.
   */
  get rowsPerWorkgroup(): number {
    return this.lanes ? this.lanes.rowsPerWorkgroup : ROWS;
  }

  /** True when this op can write a FoldedNorm: every chunk starts on a whole workgroup of rows. */
  get canFoldNorm(): boolean {
    return this.weight.chunks.every((c) => c.rowStart % this.rowsPerWorkgroup === 0);
  }

  /**
   * x [cols] f32, or a FoldedNorm whose normalized x this op reads; y [rows] f32, written as `options` says
   * (LinearOutput: store, accumulate or SwiGLU gate, where, and a FoldedNorm to write).
   * encode(pass) records one dispatch per chunk; its `rows` argument is ignored (always one token).
   */
  bind(label: string, x: GPUBuffer | FoldedNorm, y: GPUBuffer, options: LinearOutput = {}): BoundOp {
    const w = this.weight;
    const normIn = x instanceof FoldedNorm ? x : undefined;
    const xSize = normIn ? normIn.dim * 4 : (x as GPUBuffer).size;
    if (xSize < w.cols * 4 || (normIn && normIn.dim !== w.cols)) {
      throw new KernelShapeError('matvec', `${label}: x (${normIn ? 'a folded norm' : (x as GPUBuffer).label}) holds ${xSize / 4} floats, but weight ${w.name} [${w.rows}, ${w.cols}] needs ${w.cols}`);
    }
    if (options.normOut && (options.normOut.dim !== w.rows || options.normOut.parts !== Math.ceil(w.rows / this.rowsPerWorkgroup) || !this.canFoldNorm)) {
      throw new KernelShapeError('matvec', `${label}: weight ${w.name} cannot write a folded norm of ${options.normOut.dim} values in ${options.normOut.parts} sums`);
    }
    const { rowOffset } = outputPlacement(label, w.rows, options);
    if (y.size < (rowOffset + w.rows) * 4) {
      throw new KernelShapeError('matvec', `${label}: y (${y.label}) holds ${y.size} bytes, but weight ${w.name} [${w.rows}, ${w.cols}] writes ${w.rows} floats at offset ${rowOffset}`);
    }
    if (this.lanes) {
      const op = this.lanes.bind(label, x, y, options);
      return { encode: (pass) => op.encode(pass, 1) };
    }
    const fused = options.up || normIn || options.normOut;
    const pipeline = fused ? matvecPipeline(this.gpu, w, { swiglu: !!options.up, normIn: !!normIn, normOut: !!options.normOut }) : this.pipeline!;
    const dispatches = bindChunks(this.gpu, pipeline, w, label, x, y, options);
    return {
      encode(pass) {
        pass.setPipeline(pipeline);
        for (const d of dispatches) {
          pass.setBindGroup(0, d.bindGroup);
          pass.dispatchWorkgroups(d.grid[0], d.grid[1]);
        }
      },
    };
  }
}

/** Which of a matrix kernel's fused variants runs (its SWIGLU, NORM_IN and NORM_OUT constants). */
export interface Fusions {
  swiglu?: boolean;
  normIn?: boolean;
  normOut?: boolean;
}

/** The matvec_<dtype> pipeline for a weight (shared with MatMul's batched path), with the given fusions. */
export function matvecPipeline(gpu: Gpu, weight: GpuWeight, f: Fusions = {}): GPUComputePipeline {
  const constants: Record<string, number> = { WG: matvecWorkgroupSize(gpu), SWIGLU: f.swiglu ? 1 : 0, NORM_IN: f.normIn ? 1 : 0, NORM_OUT: f.normOut ? 1 : 0 };
  if (isQuantized(weight.dtype)) constants.SCALE_F16 = weight.scaleDtype === 'f16' ? 1 : 0;
  // q4k and q5k share shaders/matvec_q45k.wgsl (Q5).
  if (weight.dtype === 'q4k' || weight.dtype === 'q5k') return gpu.pipeline('matvec_q45k', { ...constants, Q5: weight.dtype === 'q5k' ? 1 : 0 });
  return gpu.pipeline(`matvec_${weight.dtype}`, constants);
}

/**
 * One bind group and workgroup grid per chunk of `w` for shaders/matvec_*.wgsl; x [n, cols], y [n, w.rows]
 * (dispatch z = n tokens; n = 1 for decode).
 */
export function bindChunks(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  w: GpuWeight,
  label: string,
  x: GPUBuffer | FoldedNorm,
  y: GPUBuffer,
  output: LinearOutput,
): { bindGroup: GPUBindGroup; grid: [number, number] }[] {
  // With `up` a workgroup writes 2 rows (2 of W and 2 of up in its 4 row slots).
  const rowsPerGroup = output.up ? 2 : ROWS;
  const xs = x instanceof FoldedNorm ? [x.input4, x.input] : [vec4View(x), x];
  return chunkBindGroups(gpu, pipeline, w, label, xs, y, output, x instanceof FoldedNorm ? x : undefined).map(({ bindGroup, rows }) => ({
    bindGroup,
    grid: grid(gpu, Math.ceil(rows / rowsPerGroup), `${label} (${w.name})`),
  }));
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
    const params = gpu.uniform(
      `${label}.params${i}`,
      new Uint8Array(
        uniformData([
          { u32: chunk.rows },
          { u32: w.cols },
          { u32: rowOffset + chunk.rowStart },
          { u32: mode },
          { u32: yStride },
          { u32: normIn?.parts ?? 0 },
          { f32: normIn?.eps ?? 0 },
          { u32: output.normOut?.dim ?? 0 },
        ]),
      ),
    );
    const resources: (GPUBuffer | GPUBufferBinding)[] = [...xs, chunk.data];
    if (chunk.scales) resources.push(chunk.scales);
    const u = up ? up.chunks[i] : chunk;
    resources.push(u.data);
    if (u.scales) resources.push(u.scales);
    resources.push(y, output.normOut?.buffer ?? gpu.unusedStorage, params);
    return { bindGroup: gpu.bindGroup(w.chunks.length > 1 ? `${label}.chunk${i}` : label, pipeline, resources), rows: chunk.rows };
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
