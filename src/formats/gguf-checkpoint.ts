/**
 * A GGUF file (llama architecture) as a Checkpoint. GGUF shapes are ggml order [ne0 = cols, ne1 = rows]; llama.cpp's
 * converter already permuted q/k into the interleaved RoPE form, so rows are passed through as stored.
 */
import { ModelFormatError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import { vocabFromGguf } from '../tokenizer/vocab.ts';
import { checkConfig, checkTensors, guessChatTemplate, type Checkpoint, type CheckpointTensor } from './checkpoint.ts';
import { DEQUANT_TYPES, dequantizeGgml } from './ggml-dequant.ts';
import { GGML_TYPES, readGguf, type GgufFile } from './gguf.ts';
import type { ByteSource } from './source.ts';

const LAYER_NAMES: Record<string, string> = {
  attn_norm: 'rmsAtt', attn_q: 'wq', attn_k: 'wk', attn_v: 'wv', attn_output: 'wo',
  ffn_norm: 'rmsFfn', ffn_gate: 'w1', ffn_down: 'w2', ffn_up: 'w3',
};

/** Our tensor name for a GGUF llama tensor name, or undefined for tensors we do not use (e.g. rope_freqs). */
export function ggufToOurName(name: string): string | undefined {
  if (name === 'token_embd.weight') return 'tokenEmbedding';
  if (name === 'output_norm.weight') return 'rmsFinal';
  if (name === 'output.weight') return 'wcls';
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name);
  if (m && LAYER_NAMES[m[2]]) return `layers.${Number(m[1])}.${LAYER_NAMES[m[2]]}`;
  return undefined;
}

export function ggufConfig(g: GgufFile, file: string): ModelConfig {
  const md = g.metadata;
  const arch = md.get('general.architecture');
  if (arch !== 'llama') {
    throw new ModelFormatError(file, `architecture "${String(arch)}" is not supported; only Llama ("llama") models convert`, 'general.architecture');
  }
  const num = (key: string, fallback?: number): number => {
    const v = md.get(`llama.${key}`);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ModelFormatError(file, v === undefined ? 'required metadata key is missing' : `expected a number, got ${String(v)}`, `llama.${key}`);
    }
    return v;
  };
  const tokens = md.get('tokenizer.ggml.tokens');
  const embd = g.tensors.find((t) => t.name === 'token_embd.weight');
  const vocabSize = num('vocab_size', Array.isArray(tokens) ? tokens.length : embd?.shape[1] ?? NaN);
  const scaling = md.get('llama.rope.scaling.type');
  let ropeScale = 1;
  if (scaling !== undefined && scaling !== 'none') {
    if (scaling !== 'linear') throw new ModelFormatError(file, `RoPE scaling "${String(scaling)}" is not supported (only linear)`, 'llama.rope.scaling.type');
    ropeScale = num('rope.scaling.factor', 1);
  } else if (md.has('llama.rope.scale_linear')) {
    ropeScale = num('rope.scale_linear');
  }
  const nHeads = num('attention.head_count');
  const id = (key: string, fallback: number) => {
    const v = md.get(`tokenizer.ggml.${key}`);
    return typeof v === 'number' ? v : fallback;
  };
  const config: ModelConfig = {
    dim: num('embedding_length'),
    hiddenDim: num('feed_forward_length'),
    nLayers: num('block_count'),
    nHeads,
    nKvHeads: num('attention.head_count_kv', nHeads),
    vocabSize,
    maxSeqLen: num('context_length'),
    normEps: num('attention.layer_norm_rms_epsilon', 1e-5),
    ropeTheta: num('rope.freq_base', 10000),
    ropeScale,
    bosId: id('bos_token_id', 1),
    eosId: id('eos_token_id', 2),
    chatTemplate: guessChatTemplate(md.get('tokenizer.chat_template'), md.get('general.name')),
  };
  if (md.has('llama.rope.dimension_count')) config.ropeDims = num('rope.dimension_count');
  checkConfig(config, file);
  return config;
}

export async function openGguf(source: ByteSource & { close?(): Promise<void> }): Promise<Checkpoint> {
  const file = source.name;
  const g = await readGguf(source);
  const config = ggufConfig(g, file);
  const tensors = new Map<string, CheckpointTensor>();
  for (const info of g.tensors) {
    const name = ggufToOurName(info.name);
    if (!name) continue;
    if (tensors.has(name)) throw new ModelFormatError(file, 'tensor appears twice', info.name);
    const type = GGML_TYPES[info.ggmlType];
    if (!DEQUANT_TYPES[info.ggmlType]) {
      throw new ModelFormatError(
        file,
        `tensor type ${type.name} is not supported (it can be neither kept nor requantized); convert a Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0 or F16 ` +
          'GGUF of the model instead (--quant keep, the default for quantized GGUF files, keeps their blocks as they are)',
        info.name,
      );
    }
    if (info.shape.length > 2 || (info.shape.length === 2 && info.shape.some((d) => d < 1))) {
      throw new ModelFormatError(file, `shape [${info.shape}] is not a vector or matrix`, info.name);
    }
    const cols = info.shape[0];
    const nRows = info.shape.length === 2 ? info.shape[1] : 1;
    const rowBytes = (cols / type.blockSize) * type.blockBytes;
    const base = g.dataOffset + info.offset;
    const readBlocks = async (rowStart: number, rows: number) => {
      if (rowStart < 0 || rows < 0 || rowStart + rows > nRows) throw new RangeError(`${name}: rows ${rowStart}+${rows} of ${nRows}`);
      return source.read(base + rowStart * rowBytes, rows * rowBytes);
    };
    tensors.set(name, {
      name,
      sourceName: info.name,
      shape: info.shape.length === 2 ? [nRows, cols] : [cols],
      sourceDtype: type.name,
      ggmlType: info.ggmlType,
      readBlocks,
      async readRows(rowStart, rows) {
        const bytes = await readBlocks(rowStart, rows);
        const out = new Float32Array(rows * cols);
        dequantizeGgml(info.ggmlType, bytes, rows * cols, out);
        return out;
      },
    });
  }
  const ckpt: Checkpoint = {
    format: 'gguf',
    config,
    vocab: g.metadata.has('tokenizer.ggml.tokens') ? vocabFromGguf(g.metadata, file) : null,
    tensors,
    file,
    close: async () => source.close?.(),
  };
  checkTensors(ckpt, file);
  return ckpt;
}
