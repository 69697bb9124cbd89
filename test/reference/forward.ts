/**
 * A plain float64 Llama 2 forward pass, written to read like the math (after llama2.c's run.c): the reference
 * the GPU engine's logits are checked against. Weights use the package's tensor names, RoPE interleaved pairs.
 */
import type { ModelConfig } from '../../src/model/config.ts';

export type RefWeights = Map<string, ArrayLike<number>>;

export class ReferenceModel {
  readonly keyCache: Float64Array[];
  readonly valueCache: Float64Array[];
  private readonly headDim: number;
  private readonly kvDim: number;

  constructor(
    readonly config: ModelConfig,
    private readonly w: RefWeights,
    readonly maxSeqLen = config.maxSeqLen,
  ) {
    this.headDim = config.dim / config.nHeads;
    this.kvDim = this.headDim * config.nKvHeads;
    this.keyCache = Array.from({ length: config.nLayers }, () => new Float64Array(maxSeqLen * this.kvDim));
    this.valueCache = Array.from({ length: config.nLayers }, () => new Float64Array(maxSeqLen * this.kvDim));
  }

  private t(name: string): ArrayLike<number> {
    const v = this.w.get(name);
    if (!v) throw new Error(`reference model: missing tensor ${name}`);
    return v;
  }

  /** Logits for `token` at position `pos`; fills the KV cache at `pos`. */
  forward(token: number, pos: number): Float64Array {
    const c = this.config;
    const { dim, hiddenDim, nHeads } = c;
    const hd = this.headDim;
    const kvMul = c.nHeads / c.nKvHeads;
    const emb = this.t('tokenEmbedding');
    const x = new Float64Array(dim);
    for (let i = 0; i < dim; i++) x[i] = emb[token * dim + i];

    for (let l = 0; l < c.nLayers; l++) {
      const p = `layers.${l}.`;
      const xb = rmsnorm(x, this.t(p + 'rmsAtt'), c.normEps);
      const q = matvec(this.t(p + 'wq'), xb, dim, dim);
      const k = matvec(this.t(p + 'wk'), xb, this.kvDim, dim);
      const v = matvec(this.t(p + 'wv'), xb, this.kvDim, dim);
      rope(q, pos, hd, c);
      rope(k, pos, hd, c);
      this.keyCache[l].set(k, pos * this.kvDim);
      this.valueCache[l].set(v, pos * this.kvDim);

      const out = new Float64Array(dim);
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor(h / kvMul);
        const att = new Float64Array(pos + 1);
        for (let t = 0; t <= pos; t++) {
          let s = 0;
          for (let i = 0; i < hd; i++) s += q[h * hd + i] * this.keyCache[l][t * this.kvDim + kvh * hd + i];
          att[t] = s / Math.sqrt(hd);
        }
        softmax(att);
        for (let t = 0; t <= pos; t++) {
          for (let i = 0; i < hd; i++) out[h * hd + i] += att[t] * this.valueCache[l][t * this.kvDim + kvh * hd + i];
        }
      }
      const xb2 = matvec(this.t(p + 'wo'), out, dim, dim);
      for (let i = 0; i < dim; i++) x[i] += xb2[i];

      const xf = rmsnorm(x, this.t(p + 'rmsFfn'), c.normEps);
      const hb = matvec(this.t(p + 'w1'), xf, hiddenDim, dim);
      const hb2 = matvec(this.t(p + 'w3'), xf, hiddenDim, dim);
      for (let i = 0; i < hiddenDim; i++) hb[i] = (hb[i] / (1 + Math.exp(-hb[i]))) * hb2[i];
      const down = matvec(this.t(p + 'w2'), hb, dim, hiddenDim);
      for (let i = 0; i < dim; i++) x[i] += down[i];
    }
    const xf = rmsnorm(x, this.t('rmsFinal'), c.normEps);
    const wcls = this.w.get('wcls') ?? this.t('tokenEmbedding');
    return matvec(wcls, xf, c.vocabSize, dim);
  }
}

function rmsnorm(x: Float64Array, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const s = 1 / Math.sqrt(ss / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * s * w[i];
  return out;
}

function matvec(w: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += w[base + c] * x[c];
    out[r] = s;
  }
  return out;
}

/** Interleaved-pair RoPE on every head of `v` (length a multiple of headDim). */
export function rope(v: Float64Array, pos: number, headDim: number, c: ModelConfig): void {
  const dims = c.ropeDims ?? headDim;
  const p = pos / (c.ropeScale || 1);
  for (let base = 0; base < v.length; base += headDim) {
    for (let i = 0; i < dims; i += 2) {
      const angle = p * Math.pow(c.ropeTheta, -i / dims);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const a = v[base + i];
      const b = v[base + i + 1];
      v[base + i] = a * cos - b * sin;
      v[base + i + 1] = a * sin + b * cos;
    }
  }
}

function softmax(x: Float64Array): void {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    x[i] = Math.exp(x[i] - max);
    sum += x[i];
  }
  for (let i = 0; i < x.length; i++) x[i] /= sum;
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
