import { KernelShapeError } from '../../errors.ts';
import type { WeightDtype } from '../../formats/quant.ts';
import type { Gpu } from '../device.ts';
import { checkWeight, type GpuWeight } from '../weights.ts';
import { LANES_PREFILL_TOKENS, LanesMatMul, lanesKernelFits } from './matmul-lanes.ts';
import { bindChunks, matvecPipeline } from './matvec.ts';
import { chunkLabel, outputMode, outputPlacement, paramsUniform, type BoundOp, type LinearOutput } from './op.ts';

/** Tokens and rows per workgroup tile (TILE in shaders/matmul.wgsl). */
const TILE = 32;
const DTYPE: Record<WeightDtype, number> = { f32: 0, f16: 1, q8: 2, q4: 3, q4k: 4, q5k: 5, q6k: 6 };

/**
 * Matrix x matrix for prefill: Y[t, r] (+)= sum_c W[r, c] * X[t, c], X [n, cols] f32, Y [n, rows] f32, for
 * 1 <= n <= maxTokens. One dispatch per row chunk.
 *
 * The kernel is chosen for the adapter (src/gpu/tuning.ts): shaders/matmul_lanes_<dtype>.wgsl, 16 tokens per
 * invocation, where Tuning.lanes holds and the weight fits it (lanesKernelFits); else the matvec kernels once per
 * token (dispatch z = n; cols a multiple of 4) where Tuning.prefillThroughMatvec holds (lavapipe); else
 * shaders/matmul.wgsl, tiled through workgroup memory, which reuses each staged weight tile across 32 tokens.
 */
export class MatMul {
  private readonly pipeline: GPUComputePipeline | undefined;
  private readonly lanes: LanesMatMul | undefined;
  /** The kernel this op runs (see the class comment); 'matvec' runs the matvec kernels once per token. */
  readonly kernel: 'tiled' | 'matvec' | 'lanes';
  /** Bound in the scales slot for f32/f16 weights, which have no scales. */
  private readonly noScales: GPUBuffer | undefined;

  constructor(
    private readonly gpu: Gpu,
    readonly weight: GpuWeight,
    readonly maxTokens: number,
    /** 'tiled', 'matvec' or 'lanes' forces a kernel (tests, benchmarks); by default the adapter decides (see above). */
    options: { kernel?: 'tiled' | 'matvec' | 'lanes' } = {},
  ) {
    checkWeight('matmul', weight);
    if (!Number.isInteger(maxTokens) || maxTokens < 1) {
      throw new KernelShapeError('matmul', `maxTokens for weight ${weight.name} must be a positive integer, got ${maxTokens}`);
    }
    const maxGroups = gpu.limits.maxComputeWorkgroupsPerDimension;
    const widest = Math.max(...weight.chunks.map((c) => c.rows));
    if (Math.ceil(widest / TILE) + TILE > maxGroups || Math.ceil(maxTokens / TILE) > maxGroups) {
      throw new KernelShapeError('matmul', `weight ${weight.name} [${weight.rows}, ${weight.cols}] with ${maxTokens} tokens needs more workgroups than this GPU dispatches; split it into smaller row chunks`);
    }
    if (options.kernel ? options.kernel === 'lanes' : lanesKernelFits(gpu, weight)) {
      this.lanes = new LanesMatMul(gpu, weight, Math.min(maxTokens, LANES_PREFILL_TOKENS));
      this.kernel = 'lanes';
      return;
    }
    const canBatch = weight.cols % 4 === 0 && maxTokens <= maxGroups;
    if (options.kernel === 'matvec' && !canBatch) {
      throw new KernelShapeError('matmul', `weight ${weight.name} [${weight.rows}, ${weight.cols}]: the per-token matvec path needs cols a multiple of 4`);
    }
    const batched = canBatch && (options.kernel ? options.kernel === 'matvec' : gpu.tuning.prefillThroughMatvec);
    this.kernel = batched ? 'matvec' : 'tiled';
    this.pipeline = batched
      ? matvecPipeline(gpu, weight)
      : gpu.pipeline('matmul', { DTYPE: DTYPE[weight.dtype], SCALE_F16: weight.scaleDtype === 'f16' ? 1 : 0 });
    this.noScales = weight.chunks[0].scales || batched ? undefined : gpu.storage(`${weight.name}.noScales`, 4);
  }

  /**
   * True when this op computes the SwiGLU pair (LinearOutput.up) in one dispatch: the lanes and per-token matvec
   * kernels do; the tiled kernel does not.
   */
  get swiglu(): boolean {
    return this.kernel !== 'tiled';
  }

  /**
   * x [maxTokens, cols] f32, y [maxTokens, rows] f32 (at least), written as `options` says (LinearOutput: store,
   * accumulate or SwiGLU gate). encode(pass, n) multiplies the first n rows of x.
   */
  bind(label: string, x: GPUBuffer, y: GPUBuffer, options: LinearOutput = {}): BoundOp {
    const w = this.weight;
    const maxTokens = this.maxTokens;
    if (x.size < maxTokens * w.cols * 4) {
      throw new KernelShapeError('matmul', `${label}: x (${x.label}) holds ${x.size} bytes, but ${maxTokens} tokens x ${w.cols} cols of weight ${w.name} need ${maxTokens * w.cols * 4}`);
    }
    if (options.up && !this.swiglu) throw new KernelShapeError('matmul', `${label}: the tiled kernel has no SwiGLU pair (up); run W1 and W3 (gate) apart`);
    const { rowOffset, yStride } = outputPlacement(label, w.rows, options);
    if (y.size < maxTokens * yStride * 4) {
      throw new KernelShapeError('matmul', `${label}: y (${y.label}) holds ${y.size} bytes, but ${maxTokens} tokens x ${yStride} floats per token need ${maxTokens * yStride * 4}`);
    }
    const name = w.name;
    const check = (n: number) => {
      if (!(n >= 1 && n <= maxTokens)) {
        throw new KernelShapeError('matmul', `${label}: ${n} tokens for weight ${name}, but it was built for 1..${maxTokens}`);
      }
    };
    if (this.lanes) {
      const op = this.lanes.bind(label, x, y, options);
      return {
        encode(pass, n = 1) {
          check(n);
          op.encode(pass, n);
        },
      };
    }
    if (this.kernel === 'matvec') {
      const pipeline = options.up ? matvecPipeline(this.gpu, w, { swiglu: true }) : this.pipeline!;
      const chunks = bindChunks(this.gpu, pipeline, w, label, x, y, options);
      return {
        encode(pass, n = 1) {
          check(n);
          pass.setPipeline(pipeline);
          for (const d of chunks) {
            pass.setBindGroup(0, d.bindGroup);
            pass.dispatchWorkgroups(d.grid[0], d.grid[1], n);
          }
        },
      };
    }
    const pipeline = this.pipeline!;
    const mode = outputMode(label, options);
    const dispatches = w.chunks.map((chunk, i) => {
      const params = paramsUniform(this.gpu, `${label}.params${i}`, [{ u32: chunk.rows }, { u32: w.cols }, { u32: rowOffset + chunk.rowStart }, { u32: yStride }, { u32: mode }]);
      const scales = chunk.scales ?? this.noScales!;
      const bindGroup = this.gpu.bindGroup(chunkLabel(label, w, i), pipeline, [x, chunk.data, scales, y, params]);
      return { bindGroup, rowTiles: Math.ceil(chunk.rows / TILE) };
    });
    return {
      encode(pass, n = 1) {
        check(n);
        // The token count rides in the dispatch size (shaders/matmul.wgsl).
        const tokenTiles = Math.ceil(n / TILE);
        const extra = (n - 1) % TILE;
        pass.setPipeline(pipeline);
        for (const d of dispatches) {
          pass.setBindGroup(0, d.bindGroup);
          pass.dispatchWorkgroups(d.rowTiles + extra, tokenTiles);
        }
      },
    };
  }
}
