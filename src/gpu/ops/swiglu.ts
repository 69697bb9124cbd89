import { KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';
import { uniformData, type BoundOp } from './op.ts';

const WG = 256;

/** SwiGLU gate hb = silu(hb) * hb2 over rows of `hiddenDim` floats (shaders/swiglu.wgsl). */
export class SwiGlu {
  private readonly pipeline: GPUComputePipeline;
  private readonly params: GPUBuffer;
  private readonly groupsX: number;

  constructor(
    private readonly gpu: Gpu,
    readonly hiddenDim: number,
    label = 'swiglu',
  ) {
    if (!Number.isInteger(hiddenDim) || hiddenDim <= 0) throw new KernelShapeError('swiglu', `hiddenDim must be a positive integer, got ${hiddenDim}`);
    this.pipeline = gpu.pipeline('swiglu', { WG });
    this.params = gpu.uniform(`${label}.params`, new Uint8Array(uniformData([{ u32: hiddenDim }])));
    this.groupsX = Math.ceil(hiddenDim / WG);
  }

  /** hb [rows, hiddenDim] (updated in place), hb2 [rows, hiddenDim]; encode(pass, n) gates the first n rows. */
  bind(label: string, hb: GPUBuffer, hb2: GPUBuffer): BoundOp {
    const bindGroup = this.gpu.bindGroup(label, this.pipeline, [hb2, hb, this.params]);
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
