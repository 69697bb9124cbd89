import { KernelShapeError } from '../../errors.ts';
import { align, type Gpu } from '../device.ts';
import { paramsUniform, type BoundOp } from './op.ts';

const WG = 256;

/** RMSNorm over rows of `dim` floats (shaders/rmsnorm.wgsl). */
export class RmsNorm {
  private readonly pipeline: GPUComputePipeline;
  private readonly params: GPUBuffer;

  constructor(
    private readonly gpu: Gpu,
    readonly dim: number,
    readonly eps: number,
    label = 'rmsnorm',
  ) {
    if (!Number.isInteger(dim) || dim <= 0) throw new KernelShapeError('rmsnorm', `dim must be a positive integer, got ${dim}`);
    if (!(eps > 0)) throw new KernelShapeError('rmsnorm', `eps must be positive, got ${eps}`);
    this.pipeline = gpu.pipeline('rmsnorm', { WG });
    this.params = paramsUniform(gpu, `${label}.params`, [{ u32: dim }, { f32: eps }]);
  }

  /** x [rows, dim], weight [dim], out [rows, dim]; encode(pass, rows) normalizes the first `rows` rows. */
  bind(label: string, x: GPUBuffer, weight: GPUBuffer, out: GPUBuffer): BoundOp {
    const bindGroup = this.gpu.bindGroup(label, this.pipeline, [x, weight, out, this.params]);
    const pipeline = this.pipeline;
    return {
      encode(pass, rows = 1) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(rows);
      },
    };
  }
}

/**
 * An RMSNorm folded into the matrix-vector ops on either side of it, for decode: the op that adds into the residual
 * stream x (wo, w2; LinearOutput.normOut) also writes x * g and one partial sum of x^2 per workgroup into this
 * buffer, and the op that reads the normalized x (wqkv, w1 and w3, wcls; MatVec.bind with this as x) scales its
 * results by 1 / sqrt(mean(x^2) + eps). The norm then costs no dispatch of its own and x is read once.
 *
 * Layout, in floats: [g (dim) | x * g (dim) | parts sums, zero up to a multiple of 4]. g is copied in once.
 */
export class FoldedNorm {
  readonly buffer: GPUBuffer;

  constructor(
    gpu: Gpu,
    label: string,
    /** g, the norm's weight [dim]. */
    weight: GPUBuffer,
    readonly dim: number,
    /** Partial sums the producing op writes: its rows per workgroup divide dim into this many. */
    readonly parts: number,
    readonly eps: number,
  ) {
    if (!FoldedNorm.fits(gpu, dim)) throw new KernelShapeError('rmsnorm', `${label}: a folded norm needs dim a multiple of 64, got ${dim}`);
    this.buffer = gpu.storage(label, (2 * dim + align(parts, 4)) * 4);
    const encoder = gpu.device.createCommandEncoder({ label: `${label}.g` });
    encoder.copyBufferToBuffer(weight, 0, this.buffer, 0, dim * 4);
    gpu.device.queue.submit([encoder.finish()]);
  }

  /** True when x * g starts where a binding may (its byte offset, 4 dim, a multiple of the device's alignment). */
  static fits(gpu: Gpu, dim: number): boolean {
    return Number.isInteger(dim) && dim > 0 && dim % 4 === 0 && (dim * 4) % gpu.limits.minStorageBufferOffsetAlignment === 0;
  }

  /** x * g followed by the partial sums (padded to whole vec4s), as a consumer's x binding. */
  get input(): GPUBufferBinding {
    return { buffer: this.buffer, offset: this.dim * 4, size: (this.dim + align(this.parts, 4)) * 4 };
  }

  /** x * g alone, as whole vec4s. */
  get input4(): GPUBufferBinding {
    return { buffer: this.buffer, offset: this.dim * 4, size: this.dim * 4 };
  }
}
