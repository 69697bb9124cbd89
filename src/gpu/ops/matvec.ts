import { KernelShapeError } from '../../errors.ts';
import { isQuantized } from '../../formats/quant.ts';
import type { Gpu } from '../device.ts';
import { checkWeight, type GpuWeight } from '../weights.ts';
import { LanesMatMul, lanesKernelFits } from './matmul-lanes.ts';
import { chunkBindGroups, grid, outputPlacement, vec4View, type BoundOp, type LinearOutput } from './op.ts';
import { FoldedNorm } from './rmsnorm.ts';

/** Rows per workgroup (fixed in shaders/matvec_*.wgsl). */
const ROWS = 4;
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
  const constants: Record<string, number> = { WG: gpu.tuning.matvecWorkgroup, SWIGLU: f.swiglu ? 1 : 0, NORM_IN: f.normIn ? 1 : 0, NORM_OUT: f.normOut ? 1 : 0 };
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
