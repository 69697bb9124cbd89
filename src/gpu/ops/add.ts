import { KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';
import { uniformData, type BoundOp } from './op.ts';

const WG = 256;

/** Residual add x += y over rows of `dim` floats (shaders/add.wgsl). */
export class Add {
  private readonly pipeline: GPUComputePipeline;
  private readonly params: GPUBuffer;
  private readonly groupsX: number;

  constructor(
    private readonly gpu: Gpu,
    readonly dim: number,
    label = 'add',
  ) {
    if (!Number.isInteger(dim) || dim <= 0) throw new KernelShapeError('add', `dim must be a positive integer, got ${dim}`);
    this.pipeline = gpu.pipeline('add', { WG });
    this.params = gpu.uniform(`${label}.params`, new Uint8Array(uniformData([{ u32: dim }])));
    this.groupsX = Math.ceil(dim / WG);
  }

  /** x [rows, dim] (updated in place), y [rows, dim]; encode(pass, n) adds the first n rows. */
  bind(label: string, x: GPUBuffer, y: GPUBuffer): BoundOp {
    const bindGroup = this.gpu.bindGroup(label, this.pipeline, [y, x, this.params]);
    const { pipeline, groupsX } = this;
    return {
      encode(pass, n = 1) {
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(groupsX, n);
      },
    };
  }
}
