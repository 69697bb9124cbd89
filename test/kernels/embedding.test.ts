// Embedding lookup (shaders/embedding.wgsl, shaders/embedding_q.wgsl) against the float64 reference on the
// DEQUANTIZED table. Tolerance: EMBEDDING_TOL (src/reference/linear.ts: one f32 rounding of q * scale).
// Tables split into row chunks (small maxChunkBytes, and the real 32000 x 4096 f16/f32 tables over lavapipe's
// 128 MiB binding limit) are read with tokens in every chunk. SwiftShader skips the 7B tables (CPU time).
import { describe, expect, it } from 'vitest';
import { KernelShapeError } from '../../src/errors.ts';
import { decodeWeights, encodeWeights, type ScaleDtype, type WeightDtype } from '../../src/formats/quant.ts';
import type { Gpu } from '../../src/gpu/device.ts';
import { Embedding } from '../../src/gpu/ops/embedding.ts';
import { destroyWeight, uploadWeight } from '../../src/gpu/weights.ts';
import { expectClose, randomArray, testGpus } from '../helpers/gpu.ts';
import { EMBEDDING_TOL, embeddingRef, WEIGHT_VARIANTS as VARIANTS } from '../../src/reference/linear.ts';

const gpus = await testGpus();

interface Case {
  vocab: number;
  dim: number;
  dtype: WeightDtype;
  scaleDtype?: ScaleDtype;
  maxChunkBytes?: number;
  chunks?: number;
}


const SMALL: Case[] = VARIANTS.flatMap((v) => [
  { vocab: 512, dim: 64, ...v },
  { vocab: 37, dim: 1001, ...v },
  // Four chunks of unequal size (the last is short): 512 rows of 64 in chunks of at most 150 rows.
  { vocab: 512, dim: 64, ...v, maxChunkBytes: 150 * (v.dtype === 'f32' ? 256 : v.dtype === 'f16' ? 128 : v.dtype === 'q8' ? 64 : 32), chunks: 4 },
]);
// ggml's k-quants (dim a multiple of 256), in one chunk and in four.
const KQUANT: Case[] = (['q4k', 'q5k', 'q6k'] as const).flatMap((dtype) => [
  { vocab: 512, dim: 256, dtype },
  { vocab: 512, dim: 512, dtype, maxChunkBytes: 150 * (dtype === 'q4k' ? 288 : dtype === 'q5k' ? 352 : 416), chunks: 4 },
]);
const LLAMA7B: Case[] = [
  { vocab: 32000, dim: 4096, dtype: 'f32', chunks: 4 },
  { vocab: 32000, dim: 4096, dtype: 'f16', chunks: 2 },
  { vocab: 32000, dim: 4096, dtype: 'q4' },
];

function rowsOf(c: Case, w: { chunks: { rowStart: number; rows: number }[] }): number[] {
  // The first and last row of every chunk, rows next to chunk boundaries, and a few in between.
  const ids = new Set<number>();
  for (const ch of w.chunks) {
    ids.add(ch.rowStart);
    ids.add(ch.rowStart + ch.rows - 1);
    ids.add(ch.rowStart + (ch.rows >> 1));
  }
  ids.add(c.vocab - 1);
  return [...ids];
}

async function check(gpu: Gpu, c: Case, seed: number): Promise<void> {
  const values = randomArray(c.vocab * c.dim, seed, 1);
  const table = uploadWeight(gpu, 'tokenEmbedding', values, c.vocab, c.dim, c.dtype, { scaleDtype: c.scaleDtype, maxChunkBytes: c.maxChunkBytes });
  if (c.chunks) expect(table.chunks.length).toBe(c.chunks);
  const ids = rowsOf(c, table);
  const offset = 3;
  const tokens = gpu.storage('tokens', new Uint32Array([7, 7, 7, ...ids]));
  const out = gpu.storage('out', new Float32Array(ids.length * c.dim).fill(Number.NaN));
  try {
    const op = new Embedding(gpu, table).bind('embedding.test', tokens, out, { tokenOffset: offset });
    await gpu.run('embedding', (pass) => op.encode(pass, ids.length));
    const got = await gpu.readF32(out);
    // Rows encode independently, so dequantizing just the looked-up rows gives the table's rows.
    const picked = new Float32Array(ids.length * c.dim);
    ids.forEach((id, i) => picked.set(values.subarray(id * c.dim, (id + 1) * c.dim), i * c.dim));
    const deq = decodeWeights(encodeWeights(picked, ids.length, c.dim, c.dtype, c.scaleDtype), ids.length, c.dim, c.dtype, c.scaleDtype);
    expectClose(got, embeddingRef(deq, ids.map((_, i) => i), c.dim), EMBEDDING_TOL.atol, EMBEDDING_TOL.rtol, `embedding ${c.dtype} [${c.vocab}, ${c.dim}]`);
  } finally {
    destroyWeight(table);
    tokens.destroy();
    out.destroy();
  }
}

const name = (c: Case) => `${c.dtype}${c.scaleDtype ? `/${c.scaleDtype}` : ''} [${c.vocab}, ${c.dim}]${c.chunks ? ` in ${c.chunks} chunks` : ''}`;

describe.each(gpus)('embedding on $name', ({ name: adapter, gpu }) => {
  it.each([...SMALL, ...KQUANT].map((c) => ({ c, label: name(c) })))('$label', async ({ c }) => {
    await check(gpu, c, c.vocab + c.dim);
  });
  if (adapter === 'llvmpipe') {
    it.each(LLAMA7B.map((c) => ({ c, label: name(c) })))('llama2-7b $label', async ({ c }) => {
      await check(gpu, c, 99);
    });
  }

  it('writes zeros for a token id past the table', async () => {
    const table = uploadWeight(gpu, 'tokenEmbedding', randomArray(512 * 64, 5), 512, 64, 'q4', { maxChunkBytes: 4096 });
    expect(table.chunks.length).toBe(4);
    const tokens = gpu.storage('tokens', new Uint32Array([512, 100000]));
    const out = gpu.storage('out', new Float32Array(2 * 64).fill(Number.NaN));
    const op = new Embedding(gpu, table).bind('embedding.outside', tokens, out);
    await gpu.run('embedding', (pass) => op.encode(pass, 2));
    expect(Array.from(await gpu.readF32(out))).toEqual(new Array(128).fill(0));
    destroyWeight(table);
  });

  it('rejects too many chunks, bad offsets and sizes', async () => {
    const table = uploadWeight(gpu, 'tokenEmbedding', randomArray(512 * 64, 5), 512, 64, 'f16', { maxChunkBytes: 100 * 128 });
    expect(table.chunks.length).toBe(6);
    expect(() => new Embedding(gpu, table)).toThrow(/tokenEmbedding .* 6 row chunks/);
    expect(() => new Embedding(gpu, table)).toThrow(KernelShapeError);
    const ok = uploadWeight(gpu, 'tokenEmbedding', randomArray(512 * 64, 5), 512, 64, 'f16');
    const tokens = gpu.storage('tokens', new Uint32Array([1, 2]));
    const out = gpu.storage('out', 2 * 64 * 4);
    expect(() => new Embedding(gpu, { ...ok, cols: 0 })).toThrow(KernelShapeError);
    expect(() => new Embedding(gpu, ok).bind('offset', tokens, out, { tokenOffset: 2 })).toThrow(KernelShapeError);
    expect(() => new Embedding(gpu, ok).bind('small out', tokens, tokens)).toThrow(KernelShapeError);
    const op = new Embedding(gpu, ok).bind('ok', tokens, out, { tokenOffset: 1 });
    await expect(gpu.run('too many', (pass) => op.encode(pass, 2))).rejects.toThrow(KernelShapeError);
    destroyWeight(table);
    destroyWeight(ok);
  });
});
