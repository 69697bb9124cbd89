/**
 * What every checkpoint reader produces: the config, the vocab (or the checkpoint's own tokenizer.model), and the
 * tensors under our names (manifest.ts), each readable as float32 rows on demand so a converter streams a tensor
 * in row ranges and never needs the whole checkpoint in memory.
 */
import { ModelFormatError } from '../errors.ts';
import { kvDim, type ModelConfig } from '../model/config.ts';
import type { Vocab } from '../tokenizer/vocab.ts';

export interface CheckpointTensor {
  /** Our name: tokenEmbedding, layers.{l}.wq, ..., rmsFinal, wcls. */
  name: string;
  /** [rows, cols] for matrices, [n] for vectors (read as one row). */
  shape: number[];
  /** The checkpoint's own name for it (e.g. blk.0.attn_q.weight), for messages. */
  sourceName?: string;
  /** The checkpoint's own element type, e.g. 'F16', 'Q4_K', 'BF16'. */
  sourceDtype: string;
  /** Rows [rowStart, rowStart + rows) as row-major float32, in the interleaved RoPE convention. */
  readRows(rowStart: number, rows: number): Promise<Float32Array>;
  /** GGUF only: the ggml type id, and the rows' blocks as the file stores them (keep.ts keeps them as they are). */
  ggmlType?: number;
  readBlocks?(rowStart: number, rows: number): Promise<Uint8Array>;
}

export interface Checkpoint {
  format: 'gguf' | 'safetensors' | 'llama2c' | 'flax' | 'synthetic';
  config: ModelConfig;
  vocab: Vocab | null;
  /** The checkpoint's own SentencePiece model (Hugging Face, Flax), copied into the package as is. */
  tokenizerModel?: Uint8Array;
  /** The file the vocab or tokenizerModel came from when it is not `file` (a tokenizer.bin, tokenizer.model), for messages. */
  tokenizerFile?: string;
  tensors: Map<string, CheckpointTensor>;
  /** The file or folder it was read from, for messages and the manifest's `source`. */
  file?: string;
  close(): Promise<void>;
}

/** Tensor names in package order with the shapes the config implies. */
export function expectedShapes(c: ModelConfig, withClassifier: boolean): Map<string, number[]> {
  const kv = kvDim(c);
  const m = new Map<string, number[]>();
  m.set('tokenEmbedding', [c.vocabSize, c.dim]);
  for (let l = 0; l < c.nLayers; l++) {
    const p = `layers.${l}.`;
    m.set(p + 'rmsAtt', [c.dim]);
    m.set(p + 'wq', [c.dim, c.dim]);
    m.set(p + 'wk', [kv, c.dim]);
    m.set(p + 'wv', [kv, c.dim]);
    m.set(p + 'wo', [c.dim, c.dim]);
    m.set(p + 'rmsFfn', [c.dim]);
    m.set(p + 'w1', [c.hiddenDim, c.dim]);
    m.set(p + 'w2', [c.dim, c.hiddenDim]);
    m.set(p + 'w3', [c.hiddenDim, c.dim]);
  }
  m.set('rmsFinal', [c.dim]);
  if (withClassifier) m.set('wcls', [c.vocabSize, c.dim]);
  return m;
}

/** Config sanity shared by every reader: positive integers, heads dividing the width, GQA groups whole. */
export function checkConfig(c: ModelConfig, file: string): void {
  const ints: (keyof ModelConfig)[] = ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'maxSeqLen'];
  for (const k of ints) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > 1 << 24) {
      throw new ModelFormatError(file, `${String(v)} is not a valid positive integer for ${k}; the config is corrupt`, k);
    }
  }
  if (c.dim % c.nHeads !== 0 || (c.dim / c.nHeads) % 2 !== 0) throw new ModelFormatError(file, `dim ${c.dim} is not a multiple of 2 * nHeads (${c.nHeads})`, 'nHeads');
  if (c.nHeads % c.nKvHeads !== 0) throw new ModelFormatError(file, `nHeads ${c.nHeads} is not a multiple of nKvHeads ${c.nKvHeads}`, 'nKvHeads');
  for (const k of ['normEps', 'ropeTheta', 'ropeScale'] as const) {
    if (!(c[k] > 0) || !Number.isFinite(c[k])) throw new ModelFormatError(file, `${c[k]} is not a valid positive number for ${k}`, k);
  }
  if (c.ropeDims !== undefined && (!Number.isSafeInteger(c.ropeDims) || c.ropeDims < 2 || c.ropeDims > c.dim / c.nHeads || c.ropeDims % 2)) {
    throw new ModelFormatError(file, `rope dimensions ${c.ropeDims} must be even and at most the head size ${c.dim / c.nHeads}`, 'ropeDims');
  }
  for (const k of ['bosId', 'eosId'] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] < 0 || c[k] >= c.vocabSize) throw new ModelFormatError(file, `token id ${c[k]} is outside the ${c.vocabSize}-piece vocab`, k);
  }
}

/** How many tensors the config implies, counted without listing them. */
export function expectedTensorCount(c: ModelConfig, withClassifier: boolean): number {
  return 2 + 9 * c.nLayers + (withClassifier ? 1 : 0);
}

/**
 * Fails when the config names more layers than the checkpoint holds tensors for. Runs before the per-layer list is
 * built, so a corrupt layer count costs one pass over the tensors the file actually lists.
 */
export function checkLayerCount(c: ModelConfig, names: Iterable<string>, file: string): void {
  const layers = new Set<string>();
  for (const n of names) {
    const m = /^layers\.(\d+)\./.exec(n);
    if (m) layers.add(m[1]);
  }
  if (c.nLayers > layers.size) {
    throw new ModelFormatError(
      file,
      `the config says ${c.nLayers} layers but the checkpoint holds tensors for ${layers.size}; the layer count is corrupt or the file is incomplete, so use an intact copy of the model`,
      'nLayers',
    );
  }
}

/** Every expected tensor present with the expected shape; `wcls` optional. Extra tensors are ignored by the converter. */
export function checkTensors(ckpt: Pick<Checkpoint, 'config' | 'tensors'>, file: string): void {
  checkLayerCount(ckpt.config, ckpt.tensors.keys(), file);
  const want = expectedShapes(ckpt.config, ckpt.tensors.has('wcls'));
  for (const [name, shape] of want) {
    const t = ckpt.tensors.get(name);
    if (!t) throw new ModelFormatError(file, 'tensor is missing; the checkpoint is incomplete or not a Llama 2 model', name);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      const stored = t.sourceName ? ` (stored as ${t.sourceName})` : '';
      throw new ModelFormatError(file, `shape [${t.shape.join(', ')}]${stored} does not match [${shape.join(', ')}] implied by the config; the config and weights disagree`, name);
    }
  }
}

/** Chat template guess: Llama 2 chat models carry [INST] in their template or "chat" in their name. */
export function guessChatTemplate(...hints: unknown[]): 'llama-2' | 'none' {
  return hints.some((h) => typeof h === 'string' && (h.includes('[INST]') || /\bchat\b/i.test(h))) ? 'llama-2' : 'none';
}
