/**
 * The model's weights on the GPU, as one record (llama2.c's TransformerWeights). Shapes are [rows, cols] = [out, in].
 */
import { ModelFormatError } from '../errors.ts';
import type { Gpu } from '../gpu/device.ts';
import { concatRows, type GpuWeight } from '../gpu/weights.ts';
import type { ModelConfig } from './config.ts';

/** A weight whose rows land at `rowOffset` in each token's row of a wider output (the qkv row). */
export interface PlacedWeight {
  w: GpuWeight;
  rowOffset: number;
}

export interface LayerWeights {
  rmsAtt: GpuWeight; // [dim]
  /**
   * wq [dim, dim], wk [kvDim, dim], wv [kvDim, dim], writing a token's qkv row [dim + 2 kvDim]: one weight of all
   * their rows after fuseQkv (one dispatch), or the three at offsets 0, dim and dim + kvDim.
   */
  qkv: PlacedWeight[];
  wo: GpuWeight; // [dim, dim]
  rmsFfn: GpuWeight; // [dim]
  w1: GpuWeight; // [hiddenDim, dim]
  w2: GpuWeight; // [dim, hiddenDim]
  w3: GpuWeight; // [hiddenDim, dim]
}

export interface ModelWeights {
  tokenEmbedding: GpuWeight; // [vocab, dim]
  layers: LayerWeights[];
  rmsFinal: GpuWeight; // [dim]
  /** Classifier [vocab, dim]; the embedding itself when the model shares it. */
  wcls: GpuWeight;
}

/** Checks every tensor is present with the shape the config implies, and arranges them as ModelWeights. */
export function assembleWeights(tensors: Map<string, GpuWeight>, c: ModelConfig, source = 'model'): ModelWeights {
  const kvDim = (c.dim / c.nHeads) * c.nKvHeads;
  const get = (name: string, rows: number, cols: number): GpuWeight => {
    const t = tensors.get(name);
    if (!t) throw new ModelFormatError(source, `tensor is missing; the package is incomplete or not a Llama model`, name);
    if (t.rows * t.cols !== rows * cols || t.cols !== cols) {
      throw new ModelFormatError(source, `shape [${t.rows}, ${t.cols}] does not match the config's [${rows}, ${cols}]`, name);
    }
    return t;
  };
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `layers.${l}.`;
    layers.push({
      rmsAtt: get(p + 'rmsAtt', 1, c.dim),
      qkv: [
        { w: get(p + 'wq', c.dim, c.dim), rowOffset: 0 },
        { w: get(p + 'wk', kvDim, c.dim), rowOffset: c.dim },
        { w: get(p + 'wv', kvDim, c.dim), rowOffset: c.dim + kvDim },
      ],
      wo: get(p + 'wo', c.dim, c.dim),
      rmsFfn: get(p + 'rmsFfn', 1, c.dim),
      w1: get(p + 'w1', c.hiddenDim, c.dim),
      w2: get(p + 'w2', c.dim, c.hiddenDim),
      w3: get(p + 'w3', c.hiddenDim, c.dim),
    });
  }
  const tokenEmbedding = get('tokenEmbedding', c.vocabSize, c.dim);
  return {
    tokenEmbedding,
    layers,
    rmsFinal: get('rmsFinal', 1, c.dim),
    wcls: tensors.has('wcls') ? get('wcls', c.vocabSize, c.dim) : tokenEmbedding,
  };
}

/**
 * Joins each layer's wq, wk and wv into one weight (concatRows: one buffer where it fits the device's limits), so
 * a step computes all three in one dispatch. `tensors` (the model's GPU tensors, which it destroys on unload)
 * then holds layers.N.wqkv instead of the three. Where the encodings differ, neighbours that share one still join:
 * wq and wk at q4 with wv at q8 or q6k (the q4 mix) become layers.N.wqk and wv, two dispatches.
 */
export function fuseQkv(gpu: Gpu, weights: ModelWeights, tensors: Map<string, GpuWeight>): void {
  weights.layers.forEach((layer, l) => {
    const runs: PlacedWeight[][] = [];
    for (const p of layer.qkv) {
      const run = runs.at(-1);
      if (run && sameEncoding(run[0].w, p.w)) run.push(p);
      else runs.push([p]);
    }
    layer.qkv = runs.map((run) => {
      if (run.length === 1) return run[0];
      const name = `layers.${l}.w${run.map((p) => p.w.name.slice(-1)).join('')}`;
      const joined = concatRows(gpu, name, run.map((p) => p.w))!;
      for (const p of run) tensors.delete(p.w.name);
      tensors.set(name, joined);
      return { w: joined, rowOffset: run[0].rowOffset };
    });
  });
}

/** Weights whose rows can be laid end to end in one weight (concatRows). */
function sameEncoding(a: GpuWeight, b: GpuWeight): boolean {
  return a.dtype === b.dtype && a.scaleDtype === b.scaleDtype && a.cols === b.cols;
}

/** The single buffer of a vector weight (norms are f32, one chunk). */
export function vectorBuffer(w: GpuWeight): GPUBuffer {
  return w.chunks[0].data;
}
