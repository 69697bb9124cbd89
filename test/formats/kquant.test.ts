/**
 * The k-quant encodings (src/formats/kquant.ts) on the CPU: hand-built ggml blocks (ggml-blocks.ts, values known in
 * float64) through the package layout decode to exactly their values; Q8_0 and Q4_0 re-laid as q8 and q4 keep
 * every value; the round-to-nearest quantizer stays within a stated error of the floats it encodes; manifests with
 * k-quant tensors validate, and wrong byte lengths or widths are refused; synth's Q4_K_M mix.
 */
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.ts';
import { dequantizeGgml } from '../../src/formats/ggml-dequant.ts';
import { decodeK, encodeK, ggmlKBlocks, packageKBlocks, quantizeK, repackGgml32, type KDtype } from '../../src/formats/kquant.ts';
import { decodeWeights, encodedByteLengths } from '../../src/formats/quant.ts';
import { validateManifest } from '../../src/formats/validate.ts';
import { synthCheckpoint, withQ4KMix } from '../../src/model/synthetic.ts';
import { randomArray } from '../helpers/random.ts';
import { builders, rng } from './ggml-blocks.ts';

const K: [KDtype, string][] = [['q4k', 'Q4_K'], ['q5k', 'Q5_K'], ['q6k', 'Q6_K']];

describe('k-quant package layout', () => {
  it.each(K)('%s: hand-built %s blocks decode to exactly their values, and the layout round-trips', (dtype, kind) => {
    const { bytes, expected } = builders[kind].build(rng(dtype.length * 31), 5);
    const { data, scales } = packageKBlocks(bytes, dtype);
    expect(data.byteLength).toBe(encodedByteLengths(dtype, 1, 5 * 256).data);
    expect((scales?.byteLength ?? 0)).toBe(encodedByteLengths(dtype, 1, 5 * 256).scales);
    const got = decodeK(data, scales, expected.length, dtype);
    for (let i = 0; i < expected.length; i++) expect(got[i]).toBe(Math.fround(expected[i]));
    expect(ggmlKBlocks(data, scales, dtype)).toEqual(bytes);
    // f32 scales hold d exactly as well.
    const f32 = packageKBlocks(bytes, dtype, false);
    expect(decodeK(f32.data, f32.scales, expected.length, dtype, false)).toEqual(got);
  });

  it.each([['Q8_0', 'q8'], ['Q4_0', 'q4']] as const)('%s blocks re-laid as %s keep every value', (kind, dtype) => {
    const { bytes, expected } = builders[kind].build(rng(kind.length * 17), 8);
    const enc = repackGgml32(builders[kind].type as 2 | 8, bytes, expected.length);
    const got = decodeWeights(enc, 2, expected.length / 2, dtype);
    for (let i = 0; i < expected.length; i++) expect(got[i]).toBe(Math.fround(expected[i]));
  });
});

describe('k-quant quantizer', () => {
  // Round to nearest within each sub-block's scale and min: the error of a value is at most half a step of its
  // sub-block plus the rounding of the 6-bit (8-bit for q6k) sub-block scale and min, a few steps at worst. On normal
  // values the relative RMS error is the measure that matters: about 1/levels of the range.
  it.each([['q4k', 0.1], ['q5k', 0.05], ['q6k', 0.025]] as const)('%s: relative RMS error under %f, ggml bytes that dequantize to the package values', (dtype, bound) => {
    const values = randomArray(64 * 256, 3, 1);
    const blocks = quantizeK(values, dtype);
    const ggml = new Float32Array(values.length);
    dequantizeGgml({ q4k: 12, q5k: 13, q6k: 14 }[dtype], blocks, values.length, ggml);
    const enc = encodeK(values, dtype);
    expect(decodeK(enc.data, enc.scales, values.length, dtype)).toEqual(ggml);
    let err = 0;
    let sum = 0;
    for (let i = 0; i < values.length; i++) {
      err += (ggml[i] - values[i]) ** 2;
      sum += values[i] ** 2;
    }
    const rel = Math.sqrt(err / sum);
    expect(rel).toBeLessThan(bound);
    expect(rel).toBeGreaterThan(bound / 10); // a real quantization happened
    expect(() => quantizeK(new Float32Array(100), dtype)).toThrow(RangeError);
  });

  it("synth's Q4_K_M mix: Q6_K classifier and more-bits wv/w2, Q4_K elsewhere; its rows read back as its blocks' values", async () => {
    const ckpt = withQ4KMix(synthCheckpoint('tinyllama', 8));
    const type = (n: string) => ckpt.tensors.get(n)!.sourceDtype;
    expect([type('wcls'), type('tokenEmbedding'), type('layers.0.wv'), type('layers.0.w2'), type('layers.1.wv'), type('layers.3.w1'), type('layers.0.rmsAtt')])
      .toEqual(['Q6_K', 'Q4_K', 'Q6_K', 'Q6_K', 'Q4_K', 'Q4_K', 'synthetic']);
    const t = ckpt.tensors.get('layers.1.wq')!;
    const rows = await t.readRows(5, 2);
    const want = new Float32Array(rows.length);
    dequantizeGgml(t.ggmlType!, await t.readBlocks!(5, 2), rows.length, want);
    expect(rows).toEqual(want);
    expect(() => withQ4KMix(synthCheckpoint('tiny'))).toThrow(/whole 256-value blocks/);
  });
});

describe('manifests with k-quant tensors', () => {
  /** A one-layer manifest (dim 256) with every matrix in `dtype`, laid out back to back in one shard. */
  function manifest(dtype: string, dim = 256) {
    const c = { dim, hiddenDim: 512, nLayers: 1, nHeads: 4, nKvHeads: 4, vocabSize: 300, maxSeqLen: 64, normEps: 1e-5, ropeTheta: 10000, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none' };
    const shapes: [string, number[]][] = [
      ['tokenEmbedding', [300, dim]], ['layers.0.rmsAtt', [dim]], ['layers.0.wq', [dim, dim]], ['layers.0.wk', [dim, dim]],
      ['layers.0.wv', [dim, dim]], ['layers.0.wo', [dim, dim]], ['layers.0.rmsFfn', [dim]], ['layers.0.w1', [512, dim]],
      ['layers.0.w2', [dim, 512]], ['layers.0.w3', [512, dim]], ['rmsFinal', [dim]],
    ];
    let offset = 0;
    const range = (byteLength: number) => {
      const r = { shard: 0, offset, byteLength };
      offset += Math.ceil(byteLength / 256) * 256;
      return r;
    };
    const tensors = shapes.map(([name, shape]) => {
      const d = shape.length === 1 ? 'f32' : dtype;
      const [rows, cols] = shape.length === 1 ? [1, shape[0]] : shape;
      const len = encodedByteLengths(d as 'f32', rows, cols);
      return { name, dtype: d, shape, chunks: [{ rowStart: 0, rows, data: range(len.data), ...(len.scales ? { scales: range(len.scales) } : {}) }] };
    });
    return {
      format: 'llama-webgpu-package', formatVersion: 1, name: 'k', config: c, sharedClassifier: true, tensors,
      tokenizer: { file: 'tokenizer.model', byteSize: 1, sha256: '0'.repeat(64) },
      shards: [{ file: 'shard-00000.bin', byteSize: offset, sha256: '0'.repeat(64) }],
    };
  }

  it.each(['q4k', 'q5k', 'q6k'])('%s validates, and a wrong byte length is refused', (dtype) => {
    expect(validateManifest(manifest(dtype)).tensors[2].dtype).toBe(dtype);
    const bad = manifest(dtype);
    bad.tensors[2].chunks[0].data.byteLength -= 16;
    expect(() => validateManifest(bad)).toThrow(ModelFormatError);
  });

  it('a k-quant tensor whose rows are not whole 256-value blocks is refused', () => {
    expect(() => validateManifest(manifest('q4k', 128))).toThrow(/whole 256-value blocks/);
  });
});
