/**
 * Deterministic random-weight checkpoints in the real Llama 2 shapes, so real sizes can be converted, loaded and
 * timed without real weights. Values are uniform with the spread of a trained model's init (std ~0.02), norms 1.
 * Every row is generated on demand from (tensor name, row), so a 70B-shaped checkpoint costs no memory.
 */
import type { Checkpoint, CheckpointTensor } from '../formats/checkpoint.ts';
import { dequantizeGgml } from '../formats/ggml-dequant.ts';
import { ConvertOptionsError } from '../errors.ts';
import { K_BLOCK, K_GGML_TYPE, quantizeK } from '../formats/kquant.ts';
import { moreBitsLayer } from '../formats/quant-plan.ts';
import type { Vocab } from '../tokenizer/vocab.ts';
import type { ModelConfig } from './config.ts';

export const SYNTH_SHAPES = {
  tiny: { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, maxSeqLen: 512 },
  tinyllama: { dim: 2048, hiddenDim: 5632, nLayers: 22, nHeads: 32, nKvHeads: 4, vocabSize: 32000, maxSeqLen: 2048 },
  'llama2-7b': { dim: 4096, hiddenDim: 11008, nLayers: 32, nHeads: 32, nKvHeads: 32, vocabSize: 32000, maxSeqLen: 4096 },
  'llama2-13b': { dim: 5120, hiddenDim: 13824, nLayers: 40, nHeads: 40, nKvHeads: 40, vocabSize: 32000, maxSeqLen: 4096 },
  'llama2-70b': { dim: 8192, hiddenDim: 28672, nLayers: 80, nHeads: 64, nKvHeads: 8, vocabSize: 32000, maxSeqLen: 4096 },
} as const;

export type SynthShape = keyof typeof SYNTH_SHAPES;

export function synthConfig(shape: SynthShape, layers?: number): ModelConfig {
  const s = SYNTH_SHAPES[shape];
  return { ...s, nLayers: layers ?? s.nLayers, normEps: 1e-5, ropeTheta: 10000, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'llama-2' };
}

/** A byte-fallback vocab: <unk>, <s>, </s>, the 256 byte pieces, printable ASCII with and without "▁", then unused. */
export function synthVocab(size: number): Vocab {
  const pieces = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  for (let c = 33; c < 127 && pieces.length < size; c++) {
    pieces.push(String.fromCharCode(c));
    types.push(1);
  }
  for (let c = 33; c < 127 && pieces.length < size; c++) {
    pieces.push('\u2581' + String.fromCharCode(c));
    types.push(1);
  }
  if (pieces.length < size) {
    pieces.push('\u2581');
    types.push(1);
  }
  while (pieces.length < size) {
    pieces.push(`<unused${pieces.length}>`);
    types.push(5);
  }
  pieces.length = size;
  types.length = size;
  const scores = pieces.map((_, i) => -i);
  return { pieces, scores, types, bosId: 1, eosId: 2, unkId: 0 };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

function tensor(name: string, shape: number[], fill: 'random' | 'ones'): CheckpointTensor {
  const cols = shape[shape.length - 1];
  const seed = hash(name);
  const spread = 0.02 * Math.sqrt(3);
  return {
    name,
    shape,
    sourceDtype: 'synthetic',
    async readRows(rowStart: number, rows: number): Promise<Float32Array> {
      const out = new Float32Array(rows * cols);
      if (fill === 'ones') return out.fill(1);
      for (let r = 0; r < rows; r++) {
        // xorshift32 seeded per row: any row range is reproducible on its own.
        let x = (seed ^ Math.imul(rowStart + r + 1, 0x9e3779b1)) >>> 0 || 1;
        const base = r * cols;
        for (let c = 0; c < cols; c++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          out[base + c] = ((x >>> 0) / 4294967296 - 0.5) * 2 * spread;
        }
      }
      return out;
    },
  };
}

export function synthCheckpoint(shape: SynthShape, layers?: number): Checkpoint {
  const config = synthConfig(shape, layers);
  const { dim, hiddenDim, vocabSize } = config;
  const kvDim = (dim / config.nHeads) * config.nKvHeads;
  const tensors = new Map<string, CheckpointTensor>();
  const add = (name: string, s: number[], fill: 'random' | 'ones' = 'random') => tensors.set(name, tensor(name, s, fill));
  add('tokenEmbedding', [vocabSize, dim]);
  for (let l = 0; l < config.nLayers; l++) {
    const p = `layers.${l}.`;
    add(p + 'rmsAtt', [dim], 'ones');
    add(p + 'wq', [dim, dim]);
    add(p + 'wk', [kvDim, dim]);
    add(p + 'wv', [kvDim, dim]);
    add(p + 'wo', [dim, dim]);
    add(p + 'rmsFfn', [dim], 'ones');
    add(p + 'w1', [hiddenDim, dim]);
    add(p + 'w2', [dim, hiddenDim]);
    add(p + 'w3', [hiddenDim, dim]);
  }
  add('rmsFinal', [dim], 'ones');
  add('wcls', [vocabSize, dim]);
  return { format: 'synthetic', file: `synthetic:${shape}`, config, vocab: synthVocab(vocabSize), tensors, async close() {} };
}

/**
 * `ckpt` with its matrices quantized in llama.cpp's Q4_K_M mix, as a GGUF file of it would hold them: Q6_K for the
 * classifier, and for wv and w2 in the layers that recipe gives more bits (moreBitsLayer), Q4_K for the rest
 * (kquant.ts's quantizer). Converting it with --quant keep gives the package a Q4_K_M GGUF converts to.
 */
export function withQ4KMix(ckpt: Checkpoint): Checkpoint {
  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, t] of ckpt.tensors) {
    if (t.shape.length !== 2) {
      tensors.set(name, t);
      continue;
    }
    if (t.shape[1] % K_BLOCK !== 0) {
      throw new ConvertOptionsError(`the Q4_K_M mix needs rows of whole ${K_BLOCK}-value blocks, but ${name} has ${t.shape[1]} cols; choose a wider shape`);
    }
    const m = /^layers\.(\d+)\.(wv|w2)$/.exec(name);
    const dtype = name === 'wcls' || (m && moreBitsLayer(Number(m[1]), ckpt.config.nLayers)) ? 'q6k' : 'q4k';
    tensors.set(name, {
      ...t,
      sourceDtype: dtype === 'q6k' ? 'Q6_K' : 'Q4_K',
      ggmlType: K_GGML_TYPE[dtype],
      readBlocks: async (rowStart, rows) => quantizeK(await t.readRows(rowStart, rows), dtype),
      async readRows(rowStart, rows) {
        const out = new Float32Array(rows * t.shape[1]);
        dequantizeGgml(K_GGML_TYPE[dtype], quantizeK(await t.readRows(rowStart, rows), dtype), out.length, out);
        return out;
      },
    });
  }
  return { ...ckpt, tensors };
}
