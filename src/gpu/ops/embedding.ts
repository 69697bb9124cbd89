import { KernelShapeError } from '../../errors.ts';
import type { WeightDtype } from '../../formats/quant.ts';
import type { Gpu } from '../device.ts';
import { checkWeight, type GpuWeight } from '../weights.ts';
import { paramsUniform, type BoundOp } from './op.ts';

const WG = 64;
/** The DTYPE constant of shaders/embedding_q.wgsl (the numbering of shaders/matmul.wgsl; f32/f16 run embedding.wgsl). */
const QUANT_DTYPE: Record<WeightDtype, number> = { f32: 0, f16: 1, q8: 2, q4: 3, q4k: 4, q5k: 5, q6k: 6 };
/** Row chunks one embedding table may have: the shaders bind this many chunk slots. */
export const MAX_EMBEDDING_CHUNKS = 4;

/**
 * Embedding lookup: out[t, :] = dequant(table[tokens[tokenOffset + t], :]), tokens u32, out [n, dim] f32
 * (shaders/embedding.wgsl for f32/f16 tables, shaders/embedding_q.wgsl for the quantized ones). The token id is read on the GPU,
 * so all of the table's row chunks are bound and the shader picks the chunk. A token id past the table gives zeros.
 */
export class Embedding {
  private readonly pipeline: GPUComputePipeline;
  private readonly chunkEnds: Uint32Array;

  constructor(
    private readonly gpu: Gpu,
    readonly table: GpuWeight,
  ) {
    checkWeight('embedding', table);
    if (table.chunks.length > MAX_EMBEDDING_CHUNKS) {
      throw new KernelShapeError(
        'embedding',
        `table ${table.name} [${table.rows}, ${table.cols}] is split into ${table.chunks.length} row chunks; the kernel binds at most ` +
          `${MAX_EMBEDDING_CHUNKS}. Repack the model with larger shards, or use a smaller dtype for the embedding.`,
      );
    }
    const quantized = table.dtype !== 'f32' && table.dtype !== 'f16';
    gpu.requireLimit('maxStorageBuffersPerShaderStage', quantized ? 10 : 6, `The ${table.dtype} embedding table ${table.name}`);
    this.pipeline = quantized
      ? gpu.pipeline('embedding_q', { WG, DTYPE: QUANT_DTYPE[table.dtype], SCALE_F16: table.scaleDtype === 'f16' ? 1 : 0 })
      : gpu.pipeline('embedding', { WG, F16: table.dtype === 'f16' ? 1 : 0 });
    // Exclusive row ends; unused slots end at the last row, so no token selects them.
    this.chunkEnds = new Uint32Array(MAX_EMBEDDING_CHUNKS).fill(table.rows);
    table.chunks.forEach((c, i) => (this.chunkEnds[i] = c.rowStart + c.rows));
  }

  /**
   * tokens u32 (ids at tokenOffset..), out [n, dim] f32. encode(pass, n) embeds n tokens; out must hold at least
   * one row here and n rows when encoded.
   */
  bind(label: string, tokens: GPUBuffer, out: GPUBuffer, options: { tokenOffset?: number } = {}): BoundOp {
    const t = this.table;
    const tokenOffset = options.tokenOffset ?? 0;
    if (!Number.isInteger(tokenOffset) || tokenOffset < 0 || tokens.size < (tokenOffset + 1) * 4) {
      throw new KernelShapeError('embedding', `${label}: tokenOffset ${tokenOffset} is outside tokens (${tokens.label}, ${tokens.size / 4} ids)`);
    }
    if (out.size < t.cols * 4) {
      throw new KernelShapeError('embedding', `${label}: out (${out.label}) holds ${out.size} bytes, less than one row of ${t.name} (${t.cols} floats)`);
    }
    const params = paramsUniform(this.gpu, `${label}.params`, [...Array.from(this.chunkEnds, (u32) => ({ u32 })), { u32: t.cols }, { u32: tokenOffset }]);
    const slot = (i: number) => t.chunks[Math.min(i, t.chunks.length - 1)];
    const resources: GPUBuffer[] = [tokens];
    for (let i = 0; i < MAX_EMBEDDING_CHUNKS; i++) resources.push(slot(i).data);
    // Tables without scales (q4k, q5k) bind their data in the scales slots, which the shader then never reads.
    if (t.dtype !== 'f32' && t.dtype !== 'f16') for (let i = 0; i < MAX_EMBEDDING_CHUNKS; i++) resources.push(slot(i).scales ?? slot(i).data);
    resources.push(out, params);
    const bindGroup = this.gpu.bindGroup(label, this.pipeline, resources);
    const pipeline = this.pipeline;
    const maxN = Math.min(Math.floor(out.size / (t.cols * 4)), tokens.size / 4 - tokenOffset);
    return {
      encode(pass, n = 1) {
        if (!(n >= 1 && n <= maxN)) {
          throw new KernelShapeError('embedding', `${label}: ${n} tokens, but tokens and out hold ${maxN} from offset ${tokenOffset}`);
        }
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(n);
      },
    };
  }
}
