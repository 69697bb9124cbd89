/**
 * The model's weights on the GPU, as one record (llama2.c's TransformerWeights). Shapes are [rows, cols] = [out, in].
 */
import { ModelFormatError } from '../errors.ts';
import type { GpuWeight } from '../gpu/weights.ts';
import type { ModelConfig } from './config.ts';

export interface LayerWeights {
  rmsAtt: GpuWeight; // [dim]
  wq: GpuWeight; // [dim, dim]
  wk: GpuWeight; // [kvDim, dim]
  wv: GpuWeight; // [kvDim, dim]
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
      wq: get(p + 'wq', c.dim, c.dim),
      wk: get(p + 'wk', kvDim, c.dim),
      wv: get(p + 'wv', kvDim, c.dim),
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

/** The single buffer of a vector weight (norms are f32, one chunk). */
export function vectorBuffer(w: GpuWeight): GPUBuffer {
  return w.chunks[0].data;
}
