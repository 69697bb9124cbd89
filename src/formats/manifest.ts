/**
 * The model package: the unit we download, store and stream.
 *
 *   manifest.json     this structure
 *   tokenizer.model   a SentencePiece ModelProto
 *   shard-00000.bin … tensor bytes, exactly as the GPU kernels read them (src/formats/quant.ts, shaders/README.md)
 *
 * A 2-D tensor is stored as one or more row chunks; each chunk lies inside one shard and becomes one GPU buffer,
 * so no chunk exceeds the shard size, and the shard size bounds the largest storage binding a model needs.
 * RoPE convention in every package: interleaved pairs (llama2.c / GGUF); converters from rotate-half checkpoints
 * (Hugging Face) un-permute wq and wk.
 */
import type { ModelConfig } from '../model/config.ts';
import type { ScaleDtype, WeightDtype } from './quant.ts';

export const MANIFEST_FORMAT = 'llama-webgpu-package';
export const MANIFEST_VERSION = 1;
/** Byte alignment of every data and scales range inside a shard. */
export const SHARD_ALIGN = 256;
/** Default largest shard: comfortably inside the 128 MiB storage binding limit of mobile and software GPUs. */
export const DEFAULT_SHARD_BYTES = 64 * 1024 * 1024;

/** A byte range of one shard. */
export interface ByteRange {
  shard: number;
  offset: number;
  byteLength: number;
}

export interface TensorChunk {
  /** First row of the tensor in this chunk (0 for 1-D tensors). */
  rowStart: number;
  rows: number;
  data: ByteRange;
  /** q8/q4 only. */
  scales?: ByteRange;
}

export interface TensorEntry {
  /**
   * tokenEmbedding [vocab, dim]; rmsFinal [dim]; wcls [vocab, dim] (absent when tied to the embedding);
   * layers.{l}.rmsAtt [dim], .wq [dim, dim], .wk [kvDim, dim], .wv [kvDim, dim], .wo [dim, dim],
   * .rmsFfn [dim], .w1 [hidden, dim], .w2 [dim, hidden], .w3 [hidden, dim].
   */
  name: string;
  dtype: WeightDtype;
  /** [rows, cols] for matrices, [n] for vectors. */
  shape: number[];
  /** q8/q4 only (default f16). */
  scaleDtype?: ScaleDtype;
  chunks: TensorChunk[];
}

export interface ShardEntry {
  file: string;
  byteSize: number;
  /** Lower-case hex sha256 of the whole shard file. */
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: number;
  /** Human-readable model name. */
  name: string;
  config: ModelConfig;
  tokenizer: { file: string; byteSize: number; sha256: string };
  /** The embedding is used as the classifier (no wcls tensor). */
  sharedClassifier: boolean;
  tensors: TensorEntry[];
  shards: ShardEntry[];
  /** Where the package came from, for `info`: e.g. { format: 'gguf', file: 'x.gguf', quant: 'q4' }. */
  source?: Record<string, string>;
}
