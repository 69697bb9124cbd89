// The per-tensor encoding plan of each --quant scheme (src/formats/quant-plan.ts).
import { describe, expect, it } from 'vitest';
import { ConvertOptionsError } from '../../src/errors.ts';
import { bytesAgainstQ4, checkConvertQuant, CONVERT_QUANTS, describeMatrixDtypes, moreBitsLayer, QUANT_SCHEMES, tensorDtype } from '../../src/formats/quant-plan.ts';

/** llama.cpp's use_more_bits, in its integer arithmetic. */
function llamaCppUseMoreBits(layer: number, nLayers: number): boolean {
  const eighth = Math.floor(nLayers / 8);
  return layer < eighth || layer >= Math.floor((7 * nLayers) / 8) || (layer - eighth) % 3 === 2;
}

const layersOf = (n: number) => Array.from({ length: n }, (_, l) => l).filter((l) => moreBitsLayer(l, n));

describe('moreBitsLayer', () => {
  it('is llama.cpp use_more_bits wherever the layer count is a multiple of 8', () => {
    for (const n of [8, 16, 24, 32, 40, 48, 80]) {
      for (let l = 0; l < n; l++) expect(moreBitsLayer(l, n), `layer ${l} of ${n}`).toBe(llamaCppUseMoreBits(l, n));
    }
  });

  it('rounds the first eighth up, so small models keep their first and last layers', () => {
    expect(layersOf(5)).toEqual([0, 3, 4]);
    expect(layersOf(1)).toEqual([0]);
    expect(layersOf(2)).toEqual([0, 1]);
    expect(layersOf(22)).toEqual([0, 1, 2, 5, 8, 11, 14, 17, 19, 20, 21]);
    expect(layersOf(32)).toHaveLength(16);
  });
});

describe('tensorDtype', () => {
  const model = { nLayers: 5, sharedClassifier: true };

  it('q4: the classifier, and wv and w2 in the chosen layers, at q8; every other matrix at q4; norms f32', () => {
    expect(tensorDtype('q4', 'tokenEmbedding', [512, 64], model)).toBe('q8');
    expect(tensorDtype('q4', 'tokenEmbedding', [512, 64], { ...model, sharedClassifier: false })).toBe('q4');
    expect(tensorDtype('q4', 'wcls', [512, 64], { ...model, sharedClassifier: false })).toBe('q8');
    expect(tensorDtype('q4', 'rmsFinal', [64], model)).toBe('f32');
    for (let l = 0; l < 5; l++) {
      const more = [0, 3, 4].includes(l) ? 'q8' : 'q4';
      expect(tensorDtype('q4', `layers.${l}.wv`, [32, 64], model)).toBe(more);
      expect(tensorDtype('q4', `layers.${l}.w2`, [64, 172], model)).toBe(more);
      for (const w of ['wq', 'wk', 'wo', 'w1', 'w3']) expect(tensorDtype('q4', `layers.${l}.${w}`, [64, 64], model)).toBe('q4');
      expect(tensorDtype('q4', `layers.${l}.rmsAtt`, [64], model)).toBe('f32');
    }
  });

  it('q4: rows of whole 256-value blocks get q6k instead of q8, as in llama.cpp Q4_K_M (TinyLlama shapes)', () => {
    const tl = { nLayers: 22, sharedClassifier: false };
    expect(tensorDtype('q4', 'wcls', [32000, 2048], tl)).toBe('q6k');
    expect(tensorDtype('q4', 'tokenEmbedding', [32000, 2048], tl)).toBe('q4');
    expect(tensorDtype('q4', 'layers.0.w2', [2048, 5632], tl)).toBe('q6k');
    expect(tensorDtype('q4', 'layers.0.wv', [256, 2048], tl)).toBe('q6k');
    expect(tensorDtype('q4', 'layers.3.w2', [2048, 5632], tl)).toBe('q4');
    expect(tensorDtype('q4', 'layers.5.w2', [2048, 5632], tl)).toBe('q6k');
    expect(tensorDtype('q4', 'layers.0.w2', [2048, 5600], tl)).toBe('q8');
  });

  it('q4-pure, q8, f16 and f32 put every matrix in one encoding', () => {
    for (const name of ['tokenEmbedding', 'wcls', 'layers.0.wv', 'layers.4.w2', 'layers.1.wq']) {
      expect(tensorDtype('q4-pure', name, [64, 64], model)).toBe('q4');
      for (const s of ['q8', 'f16', 'f32'] as const) expect(tensorDtype(s, name, [64, 64], model)).toBe(s);
    }
  });
});

describe('checkConvertQuant', () => {
  it('accepts every scheme and keep, and refuses other names with a typed error that lists them', () => {
    expect(CONVERT_QUANTS).toEqual([...QUANT_SCHEMES, 'keep']);
    for (const s of CONVERT_QUANTS) expect(checkConvertQuant(s)).toBe(s);
    for (const bad of ['q4_0', 'Q4', 'int4', 'q4_k_m', '', undefined]) {
      expect(() => checkConvertQuant(bad)).toThrow(ConvertOptionsError);
      expect(() => checkConvertQuant(bad)).toThrow(`unknown quant "${String(bad)}"; use one of q4, q4-pure, q8, f16, f32, keep`);
    }
  });
});

describe('describeMatrixDtypes and bytesAgainstQ4', () => {
  it('groups roles by encoding and layers, and counts what the mix adds over every matrix at q4', () => {
    const model = { nLayers: 5, sharedClassifier: true };
    const tensors = [{ name: 'tokenEmbedding', shape: [512, 64] }, { name: 'rmsFinal', shape: [64] }];
    for (let l = 0; l < 5; l++) {
      for (const [w, shape] of [['wq', [64, 64]], ['wv', [32, 64]], ['w2', [64, 172]], ['rmsAtt', [64]]] as const) tensors.push({ name: `layers.${l}.${w}`, shape: [...shape] });
    }
    const planned = (scheme: 'q4' | 'q4-pure') => tensors.map((t) => ({ ...t, dtype: tensorDtype(scheme, t.name, t.shape, model) }));
    expect(describeMatrixDtypes(planned('q4'))).toEqual(['tokenEmbedding: q8', 'wq: q4', 'wv, w2: q8 in layers 0, 3, 4; q4 in layers 1, 2']);
    expect(describeMatrixDtypes(planned('q4-pure'))).toEqual(['tokenEmbedding, wq, wv, w2: q4']);
    const pure = bytesAgainstQ4(planned('q4-pure'));
    expect(pure.bytes).toBe(pure.q4);
    // q8 spends 34 bytes per 32 values (32 int8 + an f16 scale) where q4 spends 18.
    const groups = 512 * 2 + 3 * (32 * 2 + 64 * 6);
    expect(bytesAgainstQ4(planned('q4'))).toEqual({ bytes: pure.q4 + groups * 16, q4: pure.q4 });
  });
});
