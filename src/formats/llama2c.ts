/**
 * llama2.c legacy checkpoint (`.bin`, as export.py's legacy_export and run.c read it): a header of 7 int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means a separate
 * classifier follows), then float32 weights grouped by kind across layers:
 *   token_embedding (vocab, dim), rms_att (layer, dim), wq (layer, dim, dim), wk/wv (layer, kv_dim, dim),
 *   wo (layer, dim, dim), rms_ffn (layer, dim), w1 (layer, hidden, dim), w2 (layer, dim, hidden),
 *   w3 (layer, hidden, dim), rms_final (dim), freq_cis_real/imag (seq_len, head_size/2 each; unused), [wcls (vocab, dim)].
 * The format has no tokenizer, norm epsilon or RoPE base: the tokenizer comes from a separate file (required to
 * convert, not to inspect) and the rest takes run.c's values.
 */
import { ModelFormatError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import { vocabFromLlama2cTokenizer } from '../tokenizer/vocab.ts';
import { checkConfig, checkTensors, type Checkpoint, type CheckpointTensor } from './checkpoint.ts';
import { readAll, type ByteSource } from './source.ts';

const HEADER_BYTES = 28;
const LLAMA2C_V1_MAGIC = 0x616b3432; // "ak42": export.py's versioned formats

type Closable = ByteSource & { close?(): Promise<void> };

/** A tokenizer.bin (llama2.c) or tokenizer.model (SentencePiece) for checkpoints that carry none. */
export async function readTokenizerFile(tok: Closable, vocabSize: number): Promise<Pick<Checkpoint, 'vocab' | 'tokenizerModel' | 'tokenizerFile'>> {
  try {
    const bytes = await readAll(tok, 64 << 20);
    // By name first: a tokenizer.bin whose max_token_length is 10 also starts with byte 0x0a, like a ModelProto.
    const isProto = tok.name.endsWith('.model') || (!tok.name.endsWith('.bin') && bytes[0] === 0x0a);
    if (isProto) return { vocab: null, tokenizerModel: bytes, tokenizerFile: tok.name };
    return { vocab: vocabFromLlama2cTokenizer(bytes, vocabSize, tok.name), tokenizerFile: tok.name };
  } finally {
    await tok.close?.();
  }
}

export async function openLlama2c(source: Closable, options: { tokenizer?: Closable } = {}): Promise<Checkpoint> {
  const file = source.name;
  if (source.size < HEADER_BYTES) throw new ModelFormatError(file, `${source.size} bytes is too short for a llama2.c header`, 'header');
  const hv = new DataView((await source.read(0, HEADER_BYTES)).slice().buffer);
  if (hv.getUint32(0, true) === LLAMA2C_V1_MAGIC) {
    throw new ModelFormatError(file, 'this is a versioned llama2.c export (magic "ak42"); re-export it with export.py --version 0 (legacy)', 'magic');
  }
  const h = Array.from({ length: 7 }, (_, i) => hv.getInt32(i * 4, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = h;
  const config: ModelConfig = {
    dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocabRaw), maxSeqLen: seqLen,
    normEps: 1e-5, ropeTheta: 10000, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none',
  };
  checkConfig(config, file);
  const headSize = dim / nHeads;
  const kv = headSize * nKvHeads;

  // The size the header implies, checked before anything per layer is built: a corrupt layer count or width
  // fails here at the cost of this arithmetic.
  const layerFloats = 2 * dim + 2 * dim * dim + 2 * kv * dim + 3 * hiddenDim * dim;
  const impliedBytes = HEADER_BYTES
    + 4 * (config.vocabSize * dim * (vocabRaw < 0 ? 2 : 1) + nLayers * layerFloats + dim + seqLen * headSize);
  if (impliedBytes !== source.size) {
    throw new ModelFormatError(
      file,
      impliedBytes > source.size
        ? `the header (dim ${dim}, hidden_dim ${hiddenDim}, n_layers ${nLayers}, vocab_size ${vocabRaw}, seq_len ${seqLen}) implies ${impliedBytes} bytes but the file has ${source.size}; the file is truncated or the header is corrupt, so use an intact copy`
        : `the file has ${source.size - impliedBytes} bytes more than the header implies; it is not a legacy llama2.c checkpoint`,
      'header',
    );
  }

  // Byte layout: [name, rows, cols] per layer-grouped block, in file order.
  const tensors = new Map<string, CheckpointTensor>();
  let offset = HEADER_BYTES;
  const add = (name: string, rows: number, cols: number, vector: boolean) => {
    const base = offset;
    offset += rows * cols * 4;
    tensors.set(name, {
      name,
      shape: vector ? [cols] : [rows, cols],
      sourceDtype: 'F32',
      async readRows(rowStart, n) {
        if (rowStart < 0 || n < 0 || rowStart + n > rows) throw new RangeError(`${name}: rows ${rowStart}+${n} of ${rows}`);
        const bytes = await source.read(base + rowStart * cols * 4, n * cols * 4);
        return new Float32Array(bytes.slice().buffer);
      },
    });
  };
  const perLayer = (kind: string, rows: number, cols: number, vector = false) => {
    for (let l = 0; l < nLayers; l++) add(`layers.${l}.${kind}`, rows, cols, vector);
  };
  add('tokenEmbedding', config.vocabSize, dim, false);
  perLayer('rmsAtt', 1, dim, true);
  perLayer('wq', dim, dim);
  perLayer('wk', kv, dim);
  perLayer('wv', kv, dim);
  perLayer('wo', dim, dim);
  perLayer('rmsFfn', 1, dim, true);
  perLayer('w1', hiddenDim, dim);
  perLayer('w2', dim, hiddenDim);
  perLayer('w3', hiddenDim, dim);
  add('rmsFinal', 1, dim, true);
  offset += seqLen * headSize * 4; // freq_cis_real and freq_cis_imag: RoPE tables we compute ourselves
  if (vocabRaw < 0) add('wcls', config.vocabSize, dim, false);
  // Without a tokenizer the weights can still be inspected (info); converting then fails naming --tokenizer.
  const tok = options.tokenizer ? await readTokenizerFile(options.tokenizer, config.vocabSize) : { vocab: null };
  const ckpt: Checkpoint = { format: 'llama2c', config, ...tok, tensors, file, close: async () => source.close?.() };
  checkTensors(ckpt, file);
  return ckpt;
}
