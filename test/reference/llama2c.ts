import { readFileSync } from 'node:fs';
import type { ModelConfig } from '../../src/model/config.ts';
import type { RefWeights } from './forward.ts';

/** Minimal llama2.c checkpoint parse for the reference (the product reader lives in src/formats/). */
export function loadLlama2cForReference(file: string): { config: ModelConfig; weights: RefWeights } {
  const buf = readFileSync(file);
  const h = new Int32Array(buf.buffer, buf.byteOffset, 7);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = h;
  const vocabSize = Math.abs(vocabRaw);
  const f = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.byteLength));
  const hd = dim / nHeads;
  const kvDim = hd * nKvHeads;
  let o = 0;
  const take = (n: number) => f.subarray(o, (o += n));
  const w: RefWeights = new Map();
  w.set('tokenEmbedding', take(vocabSize * dim));
  const per = (name: string, n: number) => {
    for (let l = 0; l < nLayers; l++) w.set(`layers.${l}.${name}`, take(n));
  };
  per('rmsAtt', dim);
  per('wq', dim * dim);
  per('wk', kvDim * dim);
  per('wv', kvDim * dim);
  per('wo', dim * dim);
  per('rmsFfn', dim);
  per('w1', hiddenDim * dim);
  per('w2', dim * hiddenDim);
  per('w3', hiddenDim * dim);
  w.set('rmsFinal', take(dim));
  take(seqLen * hd); // freq_cis_real, freq_cis_imag
  if (vocabRaw < 0) w.set('wcls', take(vocabSize * dim));
  const config: ModelConfig = {
    dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, maxSeqLen: seqLen, normEps: 1e-5, ropeTheta: 10000,
    ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none',
  };
  return { config, weights: w };
}
