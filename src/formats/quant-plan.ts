/**
 * Which encoding (quant.ts) each tensor of a package gets, from the scheme the user picks (`convert --quant`,
 * `synth --quant`, the page's 4-bit choice).
 *
 *   q4       4-bit weights, with more bits where 4 cost the most: the classifier (and the embedding when it doubles
 *            as the classifier), and wv and w2 (attn_v, ffn_down) in the layers moreBitsLayer picks. Like llama.cpp's
 *            Q4_K_M, those get q6k (6.56 bits a weight) where rows are whole 256-value k-quant blocks, else q8.
 *            Teacher-forced on a held-out story, stories260K (64- and 172-wide rows, so q8) is 3.7% over f32 in
 *            perplexity with 88.5% top-1 agreement, against 10.2% and 84.2% with every matrix at q4
 *            (`llama-webgpu eval`, test/model/quantized.test.ts).
 *   q4-pure  every matrix at q4 (ggml's Q4_0 applied to all of them).
 *   q8, f16, f32  every matrix in that encoding.
 * Norm weights (1-D) are always f32. A conversion also takes `keep` (keep.ts): a GGUF's matrices as they are stored.
 */
import { ConvertOptionsError } from '../errors.ts';
import { K_BLOCK } from './kquant.ts';
import { encodedByteLengths, type ScaleDtype, type WeightDtype } from './quant.ts';

export const QUANT_SCHEMES = ['q4', 'q4-pure', 'q8', 'f16', 'f32'] as const;
export type QuantScheme = (typeof QUANT_SCHEMES)[number];

export function isQuantScheme(name: unknown): name is QuantScheme {
  return (QUANT_SCHEMES as readonly unknown[]).includes(name);
}

/**
 * Every `quant` a conversion takes: `convert --quant`, importFromUrl, the store worker and the page. The schemes
 * above, and 'keep' for a GGUF's own blocks.
 */
export const CONVERT_QUANTS = [...QUANT_SCHEMES, 'keep'] as const;
export type ConvertQuant = (typeof CONVERT_QUANTS)[number];

/** `name` as a conversion's quant, or a ConvertOptionsError naming `option` and listing the valid names. */
export function checkConvertQuant(name: unknown, option = 'quant'): ConvertQuant {
  if ((CONVERT_QUANTS as readonly unknown[]).includes(name)) return name as ConvertQuant;
  throw new ConvertOptionsError(`unknown ${option} "${String(name)}"; use one of ${CONVERT_QUANTS.join(', ')}`);
}

/**
 * The layers whose wv and w2 get more bits in the q4 mix: llama.cpp's choice for Q4_K_M (use_more_bits: the first and last
 * eighth of the layers and every third layer between), with the first eighth rounded up like the last, so that a
 * model of fewer than 8 layers still protects its first layer. On 5-layer stories260K that picks layers 0, 3 and 4:
 * perplexity +3.7% over f32 (top-1 88.5%), where llama.cpp's own picks, layers 2 and 4, give +7.9% (86.3%). At 32
 * layers the two rules agree (16 layers); at 22 (TinyLlama) this one picks 11 layers, llama.cpp's 10.
 */
export function moreBitsLayer(layer: number, nLayers: number): boolean {
  const eighth = Math.ceil(nLayers / 8);
  return layer < eighth || layer >= nLayers - eighth || (layer - eighth) % 3 === 2;
}

/** The model facts a plan depends on. */
export interface PlanModel {
  nLayers: number;
  /** The embedding doubles as the classifier (no wcls tensor). */
  sharedClassifier: boolean;
}

/** The encoding of tensor `name` (package names: tokenEmbedding, layers.N.wq, wcls...) of `shape` under `scheme`. */
export function tensorDtype(scheme: QuantScheme, name: string, shape: readonly number[], model: PlanModel): WeightDtype {
  if (shape.length === 1) return 'f32';
  if (scheme !== 'q4') return scheme === 'q4-pure' ? 'q4' : scheme;
  const more = shape[1] % K_BLOCK === 0 ? 'q6k' : 'q8';
  if (name === 'wcls' || (name === 'tokenEmbedding' && model.sharedClassifier)) return more;
  const m = /^layers\.(\d+)\.(wv|w2)$/.exec(name);
  return m && moreBitsLayer(Number(m[1]), model.nLayers) ? more : 'q4';
}

/** The parts of a package's tensor entries the mix summary reads. */
interface PlannedTensor {
  name: string;
  dtype: WeightDtype;
  shape: number[];
  scaleDtype?: ScaleDtype;
}

/**
 * A package's matrices by role (wq, w2, tokenEmbedding...) and encoding, roles with the same description on one
 * line: ["tokenEmbedding: q8", "wq, wk, wo, w1, w3: q4", "wv, w2: q8 in layers 0, 3, 4; q4 in layers 1, 2"].
 */
export function describeMatrixDtypes(tensors: readonly PlannedTensor[]): string[] {
  const roles = new Map<string, Map<WeightDtype, number[]>>();
  for (const t of tensors) {
    if (t.shape.length !== 2) continue;
    const m = /^layers\.(\d+)\.(.+)$/.exec(t.name);
    const role = m ? m[2] : t.name;
    const byDtype = roles.get(role) ?? new Map<WeightDtype, number[]>();
    roles.set(role, byDtype);
    byDtype.set(t.dtype, [...(byDtype.get(t.dtype) ?? []), ...(m ? [Number(m[1])] : [])]);
  }
  const lines = new Map<string, string[]>();
  for (const [role, byDtype] of roles) {
    const text =
      byDtype.size === 1
        ? [...byDtype.keys()][0]
        : [...byDtype].map(([dtype, layers]) => `${dtype} in layers ${layers.sort((a, b) => a - b).join(', ')}`).join('; ');
    lines.set(text, [...(lines.get(text) ?? []), role]);
  }
  return [...lines].map(([text, names]) => `${names.join(', ')}: ${text}`);
}

/** Bytes of the tensors as they are encoded, and with every matrix at q4 (norms as they are). */
export function bytesAgainstQ4(tensors: readonly PlannedTensor[]): { bytes: number; q4: number } {
  let bytes = 0;
  let q4 = 0;
  for (const t of tensors) {
    const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]];
    const own = encodedByteLengths(t.dtype, rows, cols, t.scaleDtype);
    const at4 = t.shape.length === 2 ? encodedByteLengths('q4', rows, cols) : own;
    bytes += own.data + own.scales;
    q4 += at4.data + at4.scales;
  }
  return { bytes, q4 };
}
