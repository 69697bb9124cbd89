/** checkFit on Llama 2 7B / 13B / 70B shaped manifests (built in memory) against real and small device limits. */
import { describe, expect, it } from 'vitest';
import { checkFit } from '../../src/loader/fit.ts';
import type { Manifest } from '../../src/formats/manifest.ts';
import { layoutManifest, llamaConfig } from '../helpers/package.ts';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
/** What lavapipe reports (see the test run's adapter summary). */
const LAVAPIPE = { maxStorageBufferBindingSize: 128 * MiB, maxBufferSize: 4 * GiB - 1 };
/** A small mobile-class device. */
const SMALL = { maxStorageBufferBindingSize: 32 * MiB, maxBufferSize: 64 * MiB };

/** Llama 2 has a classifier separate from the embedding. */
const llama = (size: '7B' | '13B' | '70B', shardBytes?: number) =>
  layoutManifest(llamaConfig(size), { dtype: 'q4', sharedClassifier: false, shardBytes });
const q4 = { '7B': llama('7B'), '13B': llama('13B'), '70B': llama('70B') };

function chunkBytes(m: Manifest): number {
  return m.tensors.reduce((n, t) => n + t.chunks.reduce((k, c) => k + c.data.byteLength + (c.scales?.byteLength ?? 0), 0), 0);
}

describe('checkFit', () => {
  it('7B q4 fits lavapipe-like limits with the full context and an f16 KV cache', () => {
    const r = checkFit(q4['7B'], LAVAPIPE, { f16: true });
    expect(r.fits).toBe(true);
    expect(r.reasons).toEqual([]);
    expect(r.weightBytes).toBe(chunkBytes(q4['7B']));
    // 6.74e9 parameters at 4.5 bits (q4 nibbles + one f16 scale per 32).
    expect(r.weightBytes / 6.74e9).toBeCloseTo(4.5 / 8, 2);
    expect(r.kvF16).toBe(true);
    expect(r.kvBytesPerToken).toBe(2 * 32 * 4096 * 2);
    expect(r.contextLength).toBe(4096);
    expect(r.largestBinding).toBeLessThanOrEqual(64 * MiB);
    expect(r.requiredLimits.maxStorageBufferBindingSize).toBe(r.largestBinding);
    expect(r.requiredLimits.maxStorageBufferBindingSize).toBeLessThanOrEqual(LAVAPIPE.maxStorageBufferBindingSize);
  });

  it('without shader-f16 the KV cache is f32: twice the bytes per token', () => {
    const r = checkFit(q4['7B'], LAVAPIPE, { f16: false });
    expect(r.kvF16).toBe(false);
    expect(r.kvBytesPerToken).toBe(2 * 32 * 4096 * 4);
  });

  it('70B uses grouped-query attention: the KV cache per token is 8x smaller than its 64 heads suggest', () => {
    const r = checkFit(q4['70B'], LAVAPIPE, { f16: true }, { memoryBudgetBytes: 80 * GiB });
    expect(r.fits).toBe(true);
    expect(r.kvBytesPerToken).toBe(2 * 80 * 1024 * 2);
    expect(r.weightBytes / 69e9).toBeCloseTo(4.5 / 8, 1);
    expect(r.contextLength).toBe(4096);
  });

  it('70B does not fit a 24 GiB budget, and says by how much and what to do', () => {
    const r = checkFit(q4['70B'], LAVAPIPE, { f16: true }, { memoryBudgetBytes: 24 * GiB });
    expect(r.fits).toBe(false);
    expect(r.reasons).toHaveLength(1);
    expect(r.reasons[0]).toMatch(/^The weights need 3\d\.\d\d GiB .* of the 24.00 GiB memory budget .*Choose a smaller model or a more quantized package/);
  });

  it('13B in a tight budget gets a shorter context (a multiple of 64), with a note why', () => {
    const m = q4['13B'];
    const full = checkFit(m, LAVAPIPE, { f16: true });
    const budget = full.weightBytes + 64 * MiB + 1000 * full.kvBytesPerToken;
    const r = checkFit(m, LAVAPIPE, { f16: true }, { memoryBudgetBytes: budget });
    expect(r.fits).toBe(true);
    expect(r.contextLength % 64).toBe(0);
    expect(r.contextLength).toBeGreaterThanOrEqual(256);
    expect(r.contextLength).toBeLessThan(1000 + 64 * MiB / full.kvBytesPerToken);
    expect(r.weightBytes + r.contextLength * r.kvBytesPerToken).toBeLessThanOrEqual(budget);
    expect(r.reasons[0]).toMatch(new RegExp(`^Context reduced from 4096 to ${r.contextLength} tokens: the KV cache .* must fit the`));

    const fixed = checkFit(m, LAVAPIPE, { f16: true }, { memoryBudgetBytes: budget, contextLength: 4096 });
    expect(fixed.fits).toBe(false);
    expect(fixed.reasons[0]).toMatch(/^A context of 4096 tokens does not fit: .* allows at most \d+ tokens\. Ask for a shorter context\./);
  });

  it('a GPU whose binding limit is below the shard size does not fit, naming the tensor and the limit', () => {
    const r = checkFit(q4['7B'], SMALL, { f16: true });
    expect(r.fits).toBe(false);
    expect(r.reasons[0]).toMatch(/^Weight (tokenEmbedding|layers\.\d+\.\w+)\[\d+\] (data|scales) is \d+\.\d MiB in one buffer, but this GPU's maxStorageBufferBindingSize is 32\.0 MiB\. Convert the model with shards of at most 32\.0 MiB/);
    // The same model converted with 32 MiB shards fits.
    const small = llama('7B', 32 * MiB);
    const ok = checkFit(small, SMALL, { f16: true });
    expect(ok.fits).toBe(true);
    expect(ok.largestBinding).toBeLessThanOrEqual(32 * MiB);
  });

  it('an f32 KV cache layer buffer over the binding limit shortens the context', () => {
    // 13B f32: one layer's keys for 4096 tokens are 4096 * 5120 * 4 = 80 MiB, over a 32 MiB binding.
    const m = llama('13B', 16 * MiB);
    const r = checkFit(m, SMALL, { f16: false });
    expect(r.fits).toBe(true);
    expect(r.contextLength).toBe(Math.floor((32 * MiB) / (5120 * 4) / 64) * 64);
    expect(r.reasons[0]).toMatch(/Context reduced from 4096 to \d+ tokens: a layer's KV cache buffer must fit this GPU's binding limit of 32\.0 MiB/);
  });
});
