import type { Gpu } from '../device.ts';
import { ElementwiseOp } from './elementwise.ts';

/** SwiGLU gate hb = silu(hb) * hb2 over rows of `hiddenDim` floats (shaders/swiglu.wgsl); bind(label, hb, hb2). */
export class SwiGlu extends ElementwiseOp {
  constructor(gpu: Gpu, readonly hiddenDim: number, label = 'swiglu') {
    super(gpu, 'swiglu', hiddenDim, label);
  }
}
