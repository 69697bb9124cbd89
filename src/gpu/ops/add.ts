import type { Gpu } from '../device.ts';
import { ElementwiseOp } from './elementwise.ts';

/** Residual add x += y over rows of `dim` floats (shaders/add.wgsl); bind(label, x, y). */
export class Add extends ElementwiseOp {
  constructor(gpu: Gpu, readonly dim: number, label = 'add') {
    super(gpu, 'add', dim, label);
  }
}
