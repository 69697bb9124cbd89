// GGUF files with llama.cpp's quantized tensors, converted with --quant keep: the package holds the file's own
// blocks (Q4_K, Q5_K, Q6_K as they are, Q8_0 and Q4_0 re-laid as q8 and q4 with the same bits), and the engine's
// greedy ids (chunked prefill, then decode) equal a float64 forward pass over the file's dequantized weights
// (src/formats/ggml-dequant.ts, checked against hand-built blocks in test/formats/ggml-dequant.test.ts). The files
// are built here with the TS quantizers in the mixes of llama.cpp's Q4_K_M, Q5_K_M and Q6_K recipes (Q6_K for the
// classifier and, in some layers, attn_v and ffn_down), and one of Q8_0 and Q4_0.
// Each step's reference top-1 logit leads the runner-up by more than 1e-3 (checked), far above the engine's f32
// error on this 2-layer model (logits within about 1e-5), so equal ids are the expected outcome, not luck.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine.ts';
import { dequantizeGgml } from '../../src/formats/ggml-dequant.ts';
import { GGML_TYPES } from '../../src/formats/gguf.ts';
import { K_GGML_TYPE, quantizeK } from '../../src/formats/kquant.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { ggufBytes, llamaGgufMetadata, readManifest, type GgufTensorSpec } from '../helpers/fixtures.ts';
import { convertedPackage, packagesRoot, removePackagesRoot } from '../helpers/convert.ts';
import { randomArray, testGpus } from '../helpers/gpu.ts';
import { quantizeGgml32 } from '../formats/ggml-blocks.ts';
import { argmax, ReferenceModel } from '../reference/forward.ts';

const gpus = await testGpus();
afterAll(removePackagesRoot);

const config: ModelConfig = {
  dim: 256, hiddenDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 512, maxSeqLen: 64,
  normEps: 1e-5, ropeTheta: 10000, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none',
};

const Q4_0 = 2, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14;
type Mix = (tensor: string, layer: number) => number;
const kmix = (base: number): Mix => (t, l) => (t === 'output' || ((t === 'attn_v' || t === 'ffn_down') && l === 0) ? Q6_K : base);
const MIXES: Record<string, Mix> = {
  Q4_K_M: kmix(Q4_K),
  Q5_K_M: kmix(Q5_K),
  Q6_K: () => Q6_K,
  'Q8_0+Q4_0': (t, l) => (t === 'output' || l === 0 ? Q8_0 : Q4_0),
};
const PACKAGE_DTYPE: Record<number, string> = { [Q4_0]: 'q4', [Q8_0]: 'q8', [Q4_K]: 'q4k', [Q5_K]: 'q5k', [Q6_K]: 'q6k' };

function quantize(type: number, values: Float32Array): Uint8Array {
  if (type === Q8_0 || type === Q4_0) return quantizeGgml32(type, values);
  return quantizeK(values, type === Q4_K ? 'q4k' : type === Q5_K ? 'q5k' : 'q6k');
}

/** A GGUF of random weights in `mix`, and the float64 reference's weights: the file's values, dequantized. */
function buildGguf(mix: Mix, seed: number): { bytes: Uint8Array; weights: Map<string, Float64Array>; types: Map<string, number> } {
  const { dim, hiddenDim: hidden, vocabSize: vocab } = config;
  const kv = (dim / config.nHeads) * config.nKvHeads;
  const tensors: GgufTensorSpec[] = [];
  const weights = new Map<string, Float64Array>();
  const types = new Map<string, number>();
  let s = seed;
  const add = (gguf: string, ours: string, rows: number, cols: number, type: number, scale: number) => {
    const values = rows === 1 ? randomArray(cols, s++, 0.2).map((v) => 1 + v) : randomArray(rows * cols, s++, scale);
    const data = type === 0 ? new Uint8Array(values.buffer) : quantize(type, values);
    const deq = new Float32Array(rows * cols);
    dequantizeGgml(type, data, rows * cols, deq);
    tensors.push({ name: gguf, shape: rows === 1 ? [cols] : [cols, rows], ggmlType: type, data });
    weights.set(ours, Float64Array.from(deq));
    types.set(ours, type);
  };
  add('token_embd.weight', 'tokenEmbedding', vocab, dim, mix('token_embd', -1), 1);
  for (let l = 0; l < config.nLayers; l++) {
    const p = `layers.${l}.`;
    add(`blk.${l}.attn_norm.weight`, p + 'rmsAtt', 1, dim, 0, 0);
    add(`blk.${l}.attn_q.weight`, p + 'wq', dim, dim, mix('attn_q', l), 1 / Math.sqrt(dim));
    add(`blk.${l}.attn_k.weight`, p + 'wk', kv, dim, mix('attn_k', l), 1 / Math.sqrt(dim));
    add(`blk.${l}.attn_v.weight`, p + 'wv', kv, dim, mix('attn_v', l), 1 / Math.sqrt(dim));
    add(`blk.${l}.attn_output.weight`, p + 'wo', dim, dim, mix('attn_output', l), 1 / Math.sqrt(dim));
    add(`blk.${l}.ffn_norm.weight`, p + 'rmsFfn', 1, dim, 0, 0);
    add(`blk.${l}.ffn_gate.weight`, p + 'w1', hidden, dim, mix('ffn_gate', l), 1 / Math.sqrt(dim));
    add(`blk.${l}.ffn_down.weight`, p + 'w2', dim, hidden, mix('ffn_down', l), 1 / Math.sqrt(hidden));
    add(`blk.${l}.ffn_up.weight`, p + 'w3', hidden, dim, mix('ffn_up', l), 1 / Math.sqrt(dim));
  }
  add('output_norm.weight', 'rmsFinal', 1, dim, 0, 0);
  add('output.weight', 'wcls', vocab, dim, mix('output', -1), 4 / Math.sqrt(dim));
  return { bytes: ggufBytes(llamaGgufMetadata(config), tensors), weights, types };
}

/** The reference's greedy continuation of `prompt`, and the smallest lead of its top-1 logit over the runner-up. */
function referenceGreedy(weights: Map<string, Float64Array>, prompt: number[], n: number): { ids: number[]; minLead: number } {
  const ref = new ReferenceModel(config, weights, prompt.length + n);
  let logits!: Float64Array;
  prompt.forEach((t, pos) => (logits = ref.forward(t, pos)));
  const ids: number[] = [];
  let minLead = Infinity;
  for (let i = 0; i < n; i++) {
    const top = argmax(logits);
    const second = Math.max(...logits.filter((_, j) => j !== top));
    minLead = Math.min(minLead, logits[top] - second);
    ids.push(top);
    if (i + 1 < n) logits = ref.forward(top, prompt.length + i);
  }
  return { ids, minLead };
}

describe.each(gpus)('GGUF quantized tensors kept as they are, on $name', ({ gpu }) => {
  const store = createFsStore(packagesRoot());
  it.each(Object.keys(MIXES))('%s: the package keeps the blocks; greedy ids equal the float64 reference', { timeout: 600_000 }, async (mixName) => {
    const { bytes, weights, types } = buildGguf(MIXES[mixName], 100);
    const file = path.join(packagesRoot(), `${mixName}.gguf`);
    writeFileSync(file, bytes);
    const id = `kquant-${mixName.replace(/\W/g, '')}`;
    await convertedPackage(id, file, 'keep');
    const manifest = readManifest(path.join(packagesRoot(), id));
    for (const t of manifest.tensors) {
      const type = types.get(t.name)!;
      expect(t.dtype, `${t.name} (${GGML_TYPES[type].name})`).toBe(t.shape.length === 1 ? 'f32' : PACKAGE_DTYPE[type]);
    }
    if (mixName !== 'Q8_0+Q4_0') expect(manifest.tensors.find((t) => t.name === 'wcls')!.dtype).toBe('q6k');
    expect(K_GGML_TYPE.q4k).toBe(Q4_K);

    const prompt = [1, 17, 250, 3, 99];
    const n = 12;
    const want = referenceGreedy(weights, prompt, n);
    expect(want.minLead).toBeGreaterThan(1e-3);
    const engine = await createEngine({ model: id, store, gpu, prefillChunk: 3 });
    try {
      const ids: number[] = [];
      for await (const d of engine.generate(prompt, { temperature: 0, maxTokens: n })) ids.push(...d.tokenIds);
      expect(ids).toEqual(want.ids);
    } finally {
      await engine.unload();
    }
  });
});
