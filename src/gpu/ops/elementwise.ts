import { KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';
import { uniformData, type BoundOp } from './op.ts';

const WG = 256;

/**
 * An in-place elementwise op a = f(a, b) over rows of `width` floats, one thread per element: the shape of
 * shaders/add.wgsl (bindings b, a, params; dispatch (ceil(width / WG), rows)).
 */
export class ElementwiseOp {
  private readonly pipeline: GPUComputePipeline;
  private readonly params: GPUBuffer;
  private readonly groupsX: number;

  constructor(
    private readonly gpu: Gpu,
    readonly shader: string,
    readonly width: number,
    label: string,
  ) {
    if (!Number.isInteger(width) || width <= 0) throw new KernelShapeError(shader, `row width must be a positive integer, got ${width}`);
    this.pipeline = gpu.pipeline(shader, { WG });
    this.params = gpu.uniform(`${label}.params`, new Uint8Array(uniformData([{ u32: width }])));
    this.groupsX = Math.ceil(width / WG);
  }

  /** a [rows, width] (updated in place), b [rows, width]; encode(pass, n) updates the first n rows. */
  bind(label: string, a: GPUBuffer, b: GPUBuffer): BoundOp {
    const bindGroup = this.gpu.bindGroup(label, this.pipeline, [b, a, this.params]);
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
