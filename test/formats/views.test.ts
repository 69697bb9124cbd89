/**
 * Row views over stored tensors at arbitrary row ranges: the Hugging Face q/k un-permutation (ranges that start
 * and end inside a head), the transposed Flax kernel view across its column cache, and Blob-backed sources.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Hex, streamingSha256 } from '../../src/formats/hash.ts';
import type { CheckpointTensor } from '../../src/formats/checkpoint.ts';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { blobSource, memorySource } from '../../src/formats/source.ts';
import { denseTensor, transposedTensor, unpermuteRotary } from '../../src/formats/tensor-views.ts';
import { encodeDense, ggufBytes, llamaGgufMetadata, permuteRotary, transpose } from '../helpers/fixtures.ts';
import { rng } from './ggml-blocks.ts';

const r = rng(5);
const random = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);

async function everyRange(t: CheckpointTensor, full: Float32Array) {
  const [rows, cols] = t.shape;
  for (const [start, n] of [[0, rows], [3, 5], [7, 1], [rows - 3, 3], [1, rows - 2]]) {
    expect(await t.readRows(start, n), `rows ${start}+${n}`).toEqual(full.subarray(start * cols, (start + n) * cols));
  }
}

describe('shard hashing', () => {
  it('the browser path (streaming, in TypeScript) agrees with node:crypto at every block boundary and split', async () => {
    const bytes = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31 + (i >> 8)) & 255);
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 100_000]) {
      for (const cut of new Set([0, 1, 63, Math.floor(n / 2), n])) {
        if (cut > n) continue;
        const h = streamingSha256();
        h.update(bytes.subarray(0, cut));
        h.update(bytes.subarray(cut, n));
        expect(await h.digest(), `${n} bytes cut at ${cut}`).toBe(createHash('sha256').update(bytes.subarray(0, n)).digest('hex'));
      }
    }
    expect(await sha256Hex(bytes)).toBe(createHash('sha256').update(bytes).digest('hex'));
  });
});

describe('tensor views', () => {
  it('un-permuting a Hugging Face q/k projection gives the interleaved rows at any range', async () => {
    const heads = 3, hd = 8, cols = 5;
    const w = random(heads * hd * cols);
    const hf = permuteRotary(w, heads, heads * hd, cols);
    expect(hf).not.toEqual(w);
    const stored = denseTensor(memorySource(encodeDense(hf, 'F32'), 'q.bin'), 'wq', 0, [heads * hd, cols], 'F32');
    await everyRange(unpermuteRotary(stored, heads, 'q.bin'), w);
  });

  it('a transposed (in, out) kernel reads as [out, in] rows at any range, F16 and BF16 too', async () => {
    const outDim = 40, inDim = 6;
    const w = random(outDim * inDim);
    const t = transposedTensor(memorySource(encodeDense(transpose(w, outDim, inDim), 'F32'), 'k'), 'wo', 0, [inDim, outDim], 'F32');
    expect(t.shape).toEqual([outDim, inDim]);
    await everyRange(t, w);
    // A cache of 7 columns and bands of 2 stored rows: every range spans reloads and several reads.
    const small = transposedTensor(memorySource(encodeDense(transpose(w, outDim, inDim), 'F32'), 'k'), 'wo', 0, [inDim, outDim], 'F32', { cacheElements: 7 * inDim, bandBytes: 2 * outDim * 4 });
    await everyRange(small, w);
    const f16 = transposedTensor(memorySource(encodeDense(transpose(w, outDim, inDim), 'F16'), 'k'), 'wo', 0, [inDim, outDim], 'F16');
    const got = await f16.readRows(0, outDim);
    for (let i = 0; i < w.length; i++) expect(Math.abs(got[i] - w[i])).toBeLessThanOrEqual(Math.abs(w[i]) * 2 ** -11);
  });

  it('reads a GGUF through a Blob, as the browser does with a picked File', async () => {
    const c = { dim: 8, hiddenDim: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, vocabSize: 4, maxSeqLen: 8, normEps: 1e-5, ropeTheta: 1e4, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none' as const };
    const t = (name: string, shape: number[]) => ({ name, shape, ggmlType: 0, data: encodeDense(random(shape.reduce((a, b) => a * b, 1)), 'F32') });
    const tensors = [
      t('token_embd.weight', [8, 4]), t('blk.0.attn_norm.weight', [8]), t('blk.0.attn_q.weight', [8, 8]), t('blk.0.attn_k.weight', [8, 4]),
      t('blk.0.attn_v.weight', [8, 4]), t('blk.0.attn_output.weight', [8, 8]), t('blk.0.ffn_norm.weight', [8]), t('blk.0.ffn_gate.weight', [8, 16]),
      t('blk.0.ffn_down.weight', [16, 8]), t('blk.0.ffn_up.weight', [8, 16]), t('output_norm.weight', [8]),
    ];
    const ckpt = await openCheckpoint(blobSource(new Blob([ggufBytes(llamaGgufMetadata(c), tensors) as Uint8Array<ArrayBuffer>]), 'tiny.gguf'));
    expect(ckpt.file).toBe('tiny.gguf');
    expect(ckpt.vocab?.pieces).toHaveLength(4);
    expect(await ckpt.tensors.get('layers.0.w2')!.readRows(2, 3)).toEqual(new Float32Array(tensors[8].data.buffer).subarray(2 * 16, 5 * 16));
    await ckpt.close();
  });
});
