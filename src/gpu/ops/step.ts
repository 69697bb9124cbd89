/**
 * The per-step uniform: the only buffer the decode loop writes each token. Ops whose work depends on the
 * position bind it after their own params.
 *
 *   struct Step { pos: u32, n_tokens: u32, seed: u32, _pad: u32 }
 *
 * pos: position of the first token of this step; n_tokens: tokens in this step (1 for decode);
 * seed: random bits for sampling this step.
 */
import type { Gpu } from '../device.ts';

export const STEP_BYTES = 16;

export class StepUniform {
  readonly buffer: GPUBuffer;
  private readonly data = new Uint32Array(4);

  constructor(private readonly gpu: Gpu, label = 'step') {
    this.buffer = gpu.device.createBuffer({ label, size: STEP_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  write(pos: number, nTokens: number, seed = 0): void {
    this.data[0] = pos;
    this.data[1] = nTokens;
    this.data[2] = seed >>> 0;
    this.gpu.device.queue.writeBuffer(this.buffer, 0, this.data);
  }
}
