import { KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';
import type { GpuWeight } from '../weights.ts';
import { chunkBindGroups, grid, vec4View, type BoundOp, type LinearOutput } from './op.ts';
import { FoldedNorm } from './rmsnorm.ts';

/** Threads per workgroup: one subgroup (shaders/matmul_lanes_q4.wgsl). */
const WG = 8;
/**
 * Tokens per invocation for prefill (MAX_TOKENS in the shader): with 8 rows per lane, q4 11008 x 4096 and 128
 * tokens on lavapipe take 460-490 ms with 16 tokens, 510-550 with 8.
 */
export const LANES_PREFILL_TOKENS = 16;
/**
 * Rows per lane (RPL): 8 for prefill, where they share each load of X (q4 11008 x 4096, 128 tokens on lavapipe:
 * 500-630 ms against 540-730 with 4 and 640-700 with 2); 2 for decode (within the run-to-run noise of 1 to 8).
 */
const rowsPerLane = (tokens: number) => (tokens === 1 ? 2 : 8);

/**
 * True when shaders/matmul_lanes_<dtype>.wgsl runs `weight` by default on this GPU (Tuning.lanes: a CPU adapter
 * whose subgroups are exactly 8 lanes, where it is the faster kernel) and fits it (lanesKernelRuns).
 */
export function lanesKernelFits(gpu: Gpu, weight: GpuWeight): boolean {
  return gpu.tuning.lanes && lanesKernelRuns(gpu, weight);
}

/**
 * True when the lanes kernel can run `weight` at all (tests force it on any adapter with 8-lane subgroups): a q4
 * weight with cols a multiple of 4, or q4k, q5k or q6k with whole 256-value blocks, on a GPU with Tuning.lanesRun.
 */
export function lanesKernelRuns(gpu: Gpu, weight: GpuWeight): boolean {
  const dtypeFits = (weight.dtype === 'q4' && weight.cols % 4 === 0) || ((weight.dtype === 'q4k' || weight.dtype === 'q5k' || weight.dtype === 'q6k') && weight.cols % 256 === 0);
  return gpu.tuning.lanesRun && dtypeFits;
}

/**
 * Y[t, r] (+)= sum_c W[r, c] * X[t, c] through shaders/matmul_lanes_<dtype>.wgsl, the layout for CPU adapters:
 * each invocation computes 2 (decode) or 8 (prefill) rows for `tokens` tokens, so each weight element is loaded and
 * dequantized once per `tokens` tokens, and a subgroup loads each value of X once and shares it by broadcast.
 */
export class LanesMatMul {
  private readonly pipeline: GPUComputePipeline;
  /** Rows of y a workgroup writes (without `up`). */
  readonly rowsPerWorkgroup: number;
  private readonly constants: Record<string, number>;
  private readonly shader: string;

  constructor(
    private readonly gpu: Gpu,
    readonly weight: GpuWeight,
    /** Tokens per invocation: 1 (decode) ..= LANES_PREFILL_TOKENS. */
    readonly tokens: number,
  ) {
    if (!lanesKernelRuns(gpu, weight)) {
      throw new KernelShapeError(
        'matmul',
        `weight ${weight.name} (${weight.dtype} [${weight.rows}, ${weight.cols}]): the lanes kernel needs a q4 weight with cols a multiple of 4 (or q4k, q5k, q6k) and a GPU with 8-lane subgroups`,
      );
    }
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > LANES_PREFILL_TOKENS) {
      throw new KernelShapeError('matmul', `weight ${weight.name}: the lanes kernel takes 1..${LANES_PREFILL_TOKENS} tokens per invocation, got ${tokens}`);
    }
    this.rowsPerWorkgroup = rowsPerLane(tokens) * WG;
    this.constants = { WG, RPL: rowsPerLane(tokens), TOKENS: tokens, SWIGLU: 0, NORM_IN: 0, NORM_OUT: 0 };
    // q4k and q5k share shaders/matmul_lanes_q45k.wgsl (Q5); q4 and q6k have scales.
    const k45 = weight.dtype === 'q4k' || weight.dtype === 'q5k';
    if (k45) this.constants.Q5 = weight.dtype === 'q5k' ? 1 : 0;
    else this.constants.SCALE_F16 = weight.scaleDtype === 'f16' ? 1 : 0;
    this.shader = k45 ? 'matmul_lanes_q45k' : `matmul_lanes_${weight.dtype}`;
    this.pipeline = gpu.pipeline(this.shader, this.constants);
  }

  /**
   * x [n, cols] f32, y [n, rows] f32. Written as `options` says (LinearOutput). encode(pass, n)
   * multiplies the first n rows of x (the caller checks n against its buffers).
   */
  bind(label: string, x: GPUBuffer | FoldedNorm, y: GPUBuffer, options: LinearOutput = {}): BoundOp {
    const w = this.weight;
    const tokens = this.tokens;
    const normIn = x instanceof FoldedNorm ? x : undefined;
    if ((normIn || options.normOut) && tokens !== 1) throw new KernelShapeError('matmul', `${label}: folded norms run in decode (one token) only`);
    const fused = options.up || normIn || options.normOut;
    const pipeline = fused
      ? this.gpu.pipeline(this.shader, { ...this.constants, SWIGLU: options.up ? 1 : 0, NORM_IN: normIn ? 1 : 0, NORM_OUT: options.normOut ? 1 : 0 })
      : this.pipeline;
    // With `up`, half of each lane's row slots hold rows of W3: a workgroup writes half as many rows.
    const rowsPerWorkgroup = options.up ? this.rowsPerWorkgroup / 2 : this.rowsPerWorkgroup;
    const xs = normIn ? [normIn.input] : [vec4View(x as GPUBuffer)];
    const dispatches = chunkBindGroups(this.gpu, pipeline, w, label, xs, y, options, normIn).map(({ bindGroup, rows }) => {
      const rowGroups = Math.ceil(rows / rowsPerWorkgroup);
      // The token count rides in the x dimension (up to tokens - 1 extra workgroups), which must stay one row.
      const [, rowsY] = grid(this.gpu, rowGroups + tokens - 1, `${label} (${w.name})`);
      if (rowsY !== 1) throw new KernelShapeError('matmul', `${label}: weight ${w.name} has too many rows per chunk for one dispatch row; split it into smaller chunks`);
      return { bindGroup, rowGroups };
    });
    return {
      encode(pass, n = 1) {
        pass.setPipeline(pipeline);
        for (const d of dispatches) {
          pass.setBindGroup(0, d.bindGroup);
          pass.dispatchWorkgroups(d.rowGroups + ((n - 1) % tokens), Math.ceil(n / tokens));
        }
      },
    };
  }
}
