import { KernelShapeError } from '../../errors.ts';
import type { Gpu } from '../device.ts';
import type { AttentionTuning } from '../tuning.ts';
import type { KvCache } from './kv-cache.ts';
import { paramsUniform, type BoundOp } from './op.ts';

/** Largest head the kernel serves: keeps workgroup memory under WebGPU's default 16 KiB. */
const MAX_HEAD_DIM = 256;
/** Query rows per workgroup at most (MAX_ROWS in attention.wgsl). */
const MAX_ROWS = 8;
const MERGE_WG = 64;

export interface AttentionOptions {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Longest context the op serves (at most the cache's maxSeqLen). */
  maxSeqLen: number;
  /** Most tokens one step may carry. */
  maxTokens: number;
  /** Layout override (default gpu.tuning.attention); tests use it to run the other device class's layout. */
  tuning?: AttentionTuning;
  /**
   * Floats between the queries of consecutive tokens in the q buffer (default nHeads * headDim); the qkv row's
   * width when q is the leading part of it. A multiple of 4.
   */
  qStride?: number;
}

interface Scratch {
  acc: GPUBuffer;
  ml: GPUBuffer;
}

/**
 * Partial results live only between the two dispatches of one layer's attention, and layers run one after another,
 * so every Attention on a device with the same sizes shares one pair of scratch buffers (Gpu.sharedScratch).
 */
function sharedScratch(gpu: Gpu, accBytes: number, mlBytes: number): Scratch {
  return { acc: gpu.sharedScratch('attention.partAcc', accBytes), ml: gpu.sharedScratch('attention.partMl', mlBytes) };
}

/**
 * Causal grouped-query attention over the KV cache (flash-decoding): pass 1 (shaders/attention*.wgsl) splits the
 * keys across workgroups, each keeping a running max and sum; pass 2 (shaders/attention_merge.wgsl) combines the
 * splits. The number of splits adapts to the step (pos and n are read from the step uniform), so the dispatch
 * is valid and busy at every position without the CPU knowing pos. A step with one split (the layout's choice,
 * or a context of at most one chunk of keys when the caller passes pos) is one dispatch: pass 1 writes the output.
 */
export class Attention {
  private readonly decodePipeline: GPUComputePipeline;
  private readonly prefillPipeline: GPUComputePipeline;
  private readonly mergePipeline: GPUComputePipeline;
  private readonly params: GPUBuffer;
  private readonly splitTable: GPUBuffer;
  private readonly scratch: Scratch;
  /** Splits of the keys for a step of n tokens (index n). */
  readonly splits: Uint32Array;
  private readonly kvMul: number;
  private readonly decodeRows: number;
  private readonly keysPerChunk: number;

  constructor(
    private readonly gpu: Gpu,
    readonly o: AttentionOptions,
    readonly cache: KvCache,
    label = 'attention',
  ) {
    const { nHeads, nKvHeads, headDim, maxSeqLen, maxTokens, qStride } = o;
    const shape = `nHeads=${nHeads} nKvHeads=${nKvHeads} headDim=${headDim}`;
    for (const [name, v] of Object.entries({ nHeads, nKvHeads, headDim, maxSeqLen, maxTokens })) {
      if (!Number.isInteger(v) || v <= 0) throw new KernelShapeError('attention', `${name} must be a positive integer, got ${v} (${shape})`);
    }
    if (nHeads % nKvHeads !== 0) {
      throw new KernelShapeError('attention', `nHeads must be a multiple of nKvHeads for grouped-query attention (${shape}); check the model config`);
    }
    if (headDim % 4 !== 0 || headDim > MAX_HEAD_DIM) {
      throw new KernelShapeError('attention', `headDim must be a multiple of 4 and at most ${MAX_HEAD_DIM} (${shape}); this kernel cannot serve the model`);
    }
    if (cache.kvDim !== nKvHeads * headDim) {
      throw new KernelShapeError('attention', `the KV cache rows hold ${cache.kvDim} values, expected nKvHeads*headDim = ${nKvHeads * headDim} (${shape})`);
    }
    if (maxSeqLen > cache.maxSeqLen) {
      throw new KernelShapeError('attention', `maxSeqLen ${maxSeqLen} exceeds the KV cache's ${cache.maxSeqLen} positions; build the cache as long as the context`);
    }
    if (maxTokens > maxSeqLen) throw new KernelShapeError('attention', `maxTokens ${maxTokens} exceeds maxSeqLen ${maxSeqLen}`);
    if (qStride !== undefined && (qStride % 4 !== 0 || qStride < nHeads * headDim)) {
      throw new KernelShapeError('attention', `qStride ${qStride} must be a multiple of 4 and at least nHeads * headDim (${shape})`);
    }

    const hd4 = headDim / 4;
    const { keysPerChunk: WG, targetWorkgroups } = o.tuning ?? gpu.tuning.attention;
    if (WG < hd4 || (WG & (WG - 1)) !== 0) {
      throw new KernelShapeError('attention', `keysPerChunk ${WG} must be a power of two >= headDim / 4 (${shape})`);
    }
    this.kvMul = nHeads / nKvHeads;
    this.decodeRows = Math.min(MAX_ROWS, this.kvMul);
    const workgroupBytes = MAX_ROWS * hd4 * 16 + MAX_ROWS * WG * 4 + MAX_ROWS * 4 + WG * 20;
    gpu.requireLimit('maxComputeWorkgroupStorageSize', workgroupBytes, `Attention with headDim ${headDim}`);
    const F16_CACHE = cache.f16 ? 1 : 0;
    this.decodePipeline = gpu.pipeline('attention', { WG, ROWS: this.decodeRows, HD4: hd4, F16_CACHE });
    this.prefillPipeline = gpu.pipeline('attention', { WG, ROWS: MAX_ROWS, HD4: hd4, F16_CACHE });
    this.keysPerChunk = WG;
    this.mergePipeline = gpu.pipeline('attention_merge', { WG: MERGE_WG, CHUNK: WG, HD4: hd4 });
    this.params = paramsUniform(gpu, `${label}.params`, [
      { u32: nHeads },
      { u32: this.kvMul },
      { u32: cache.kvDim / 4 },
      { f32: 1 / Math.sqrt(headDim) },
      { u32: (qStride ?? nHeads * headDim) / 4 },
    ]);

    this.splits = new Uint32Array(maxTokens + 1);
    let partialRows = 0;
    for (let n = 1; n <= maxTokens; n++) {
      const tiles = nKvHeads * Math.ceil((n * this.kvMul) / this.rows(n));
      this.splits[n] = Math.min(Math.ceil(maxSeqLen / WG), Math.max(1, Math.ceil(targetWorkgroups / tiles)));
      partialRows = Math.max(partialRows, n * nHeads * this.splits[n]);
    }
    this.splits[0] = 1;
    this.splitTable = gpu.storage(`${label}.splits`, this.splits);
    this.scratch = sharedScratch(gpu, partialRows * headDim * 4, partialRows * 8);
  }

  private rows(n: number): number {
    return n === 1 ? this.decodeRows : MAX_ROWS;
  }

  /**
   * q [maxTokens, qStride] (after RoPE), out [maxTokens, nHeads*headDim]; `step` is the StepUniform buffer.
   * encode(pass, n, pos?): n == 1 decodes one query against cache rows 0..pos, n > 1 is a causal prefill of
   * positions pos..pos+n-1 (their k and v already written to the cache). pos, when given, must be the step's.
   */
  bind(label: string, q: GPUBuffer, out: GPUBuffer, step: GPUBuffer): BoundOp {
    const { keyCache, valueCache } = this.cache;
    const { acc, ml } = this.scratch;
    const pass1 = (pipeline: GPUComputePipeline, kind: string) =>
      this.gpu.bindGroup(`${label}.${kind}`, pipeline, [q, keyCache, valueCache, acc, ml, out, this.params, step]);
    const decodeGroup = pass1(this.decodePipeline, 'decode');
    const prefillGroup = pass1(this.prefillPipeline, 'prefill');
    const mergeGroup = this.gpu.bindGroup(`${label}.merge`, this.mergePipeline, [acc, ml, this.splitTable, out, this.params, step]);
    const { decodePipeline, prefillPipeline, mergePipeline, splits, kvMul, decodeRows, keysPerChunk } = this;
    const { nHeads, nKvHeads, headDim, maxTokens } = this.o;
    return {
      encode(pass, n = 1, pos?: number) {
        if (n > maxTokens) throw new KernelShapeError('attention', `${n} tokens in one step, but the op was built for maxTokens=${maxTokens}`);
        const rows = n === 1 ? decodeRows : MAX_ROWS;
        // Up to one chunk of keys, every split but the first would find nothing to do.
        const nSplits = pos !== undefined && pos + n <= keysPerChunk ? 1 : splits[n];
        pass.setPipeline(n === 1 ? decodePipeline : prefillPipeline);
        pass.setBindGroup(0, n === 1 ? decodeGroup : prefillGroup);
        pass.dispatchWorkgroups(nSplits, Math.ceil((n * kvMul) / rows), nKvHeads);
        if (nSplits === 1) return;
        pass.setPipeline(mergePipeline);
        pass.setBindGroup(0, mergeGroup);
        pass.dispatchWorkgroups(Math.ceil((n * nHeads * headDim) / 4 / MERGE_WG));
      },
    };
  }
}
