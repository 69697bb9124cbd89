// A Llama 2 7B-wide model (dim 4096, hidden 11008, vocab 32000) with 2 layers and random q4 weights, in 32 MiB
// shards, through the real page path in Chromium on Mesa lavapipe: installFromUrl into IndexedDB, createWorkerEngine
// streaming the shards onto the GPU in its worker, greedy decode. The JavaScript memory of the page and the worker
// (V8 heap plus ArrayBuffer stores, sampled over the DevTools protocol) stays within two shards plus a stated
// constant over its baseline while loading, and the greedy ids equal the Node engine's (Dawn on lavapipe) on the same
// package.
// Lavapipe on both sides: on SwiftShader a token at this width takes minutes. Lavapipe's 128 MiB storage binding
// limit also lets bench:browser show its fit check on a package with wider weight buffers.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { main as benchBrowser } from '../../src/cli/bench-browser.ts';
import { benchInBrowser } from '../../src/cli/browser/bench-run.ts';
import { createEngine } from '../../src/engine.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint } from '../../src/formats/package-writer.ts';
import { synthCheckpoint } from '../../src/model/synthetic.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveChromium } from './harness.ts';

const MiB = 2 ** 20;
const SHARD = 32 * MiB;
/**
 * What the page and the worker may hold over their baseline besides two shards: one 16 MiB IndexedDB piece being
 * copied into a shard (src/storage/idb-store.ts), and up to 16 MiB of V8 heap for the engine's objects, pipelines and
 * messages.
 */
const HEAP_ALLOWANCE = 32 * MiB;
const MODEL = 'synth-7b-2l';
const PROMPT = [1, 500, 1000, 2000];
const GEN_TOKENS = 4;

const lavapipe = (await testGpus()).filter((g) => g.name === 'llvmpipe');

describe.skipIf(!haveChromium('lavapipe') || lavapipe.length === 0)('Llama 2 7B-wide, 2 layers, q4, in Chromium on lavapipe', () => {
  let work: string;
  let packageDir: string;

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-7b-browser-'));
    packageDir = path.join(work, MODEL);
    await convertCheckpoint(synthCheckpoint('llama2-7b', 2), await directorySink(packageDir), { quant: 'q4', shardBytes: SHARD });
  }, 600_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('installs into IndexedDB, loads in the worker within two shards of JS memory, and decodes as the Node engine does', async () => {
    const engine = await createEngine({ model: MODEL, store: createFsStore(work), gpu: lavapipe[0].gpu, contextLength: 256 });
    const nodeIds: number[] = [];
    try {
      for await (const d of engine.generate(PROMPT, { temperature: 0, maxTokens: GEN_TOKENS, stopTokenIds: [] })) nodeIds.push(...d.tokenIds);
    } finally {
      await engine.unload();
    }
    expect(nodeIds.length).toBe(GEN_TOKENS);

    const r = await benchInBrowser({ packageDir, adapter: 'lavapipe', promptIds: PROMPT, genTokens: GEN_TOKENS, warmup: false, contextLength: 256 });
    const over = (r.peakJsHeapMB - r.peakJsHeapBaselineMB) * MiB;
    console.log(
      `7B-wide 2-layer q4 in Chromium on lavapipe: install ${r.installMBps.toFixed(0)} MB/s, load ${(r.loadMs / 1000).toFixed(1)} s, ` +
        `JS heap ${r.peakJsHeapBaselineMB.toFixed(1)} -> ${r.peakJsHeapMB.toFixed(1)} MB over ${r.heapSamples} samples ` +
        `(shards ${r.shardMB.toFixed(1)} MB), decode ${r.decodeTokensPerSecond.toFixed(2)} tok/s; ids ${r.ids.join(',')}`,
    );
    expect(r.adapterInfo.f16).toBe(true); // lavapipe, not SwiftShader
    expect(r.shardMB * MiB).toBeLessThanOrEqual(SHARD);
    expect(r.ids).toEqual(nodeIds);
    expect(r.generatedTokens).toBe(GEN_TOKENS);
    // The sampling saw the loader holding a shard, and never more than two shards plus the allowance.
    expect(r.heapSamples).toBeGreaterThan(10);
    expect(over).toBeGreaterThan(r.shardMB * MiB);
    expect(over).toBeLessThanOrEqual(2 * SHARD + HEAP_ALLOWANCE);
  }, 900_000);

  test('bench:browser prints the fit check for a package too wide for the adapter, and exits 1 before installing', async () => {
    // TinyLlama's 250 MiB embedding in one f32 buffer, over lavapipe's 128 MiB binding limit.
    const wide = path.join(work, 'too-wide');
    await convertCheckpoint(synthCheckpoint('tinyllama', 1), await directorySink(wide), { quant: 'f32', shardBytes: 300 * MiB });
    const errors: string[] = [];
    const err = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.join(' ')));
    const out = vi.spyOn(console, 'log').mockImplementation(() => {});
    const progress: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => progress.push(String(chunk)) > 0);
    let status: number;
    try {
      status = await benchBrowser([wide, '--adapter', 'lavapipe', '--prompt-tokens', '8', '--gen-tokens', '2']);
    } finally {
      err.mockRestore();
      out.mockRestore();
      stderr.mockRestore();
      rmSync(wide, { recursive: true, force: true });
    }
    expect(status).toBe(1);
    expect(errors).toEqual([
      expect.stringMatching(/^ModelDoesNotFitError: Model "too-wide" does not fit this GPU: Weight tokenEmbedding\[0\] data is 250\.0 MiB in one buffer, but this GPU's maxStorageBufferBindingSize is 128\.0 MiB\. Convert the model with shards of at most 128\.0 MiB/),
    ]);
    expect(errors[0]).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(progress.join('')).toMatch(/adapter: .*shader-f16 yes/);
    expect(progress.join('')).not.toMatch(/installing/);
  }, 300_000);
});
