import { KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';
import { uniformData, type BoundOp } from './op.ts';

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
    this.params = gpu.uniform(`${label}.params`, new Uint8Array(uniformData([{ u32: dim }, { f32: eps }])));
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
