// A Llama 2 7B-wide model (dim 4096, hidden 11008, vocab 32000) with 2 layers and random q4 weights, in 32 MiB
// shards, through the real page path in Chromium on Mesa lavapipe: installFromUrl into IndexedDB, createWorkerEngine
// streaming the shards onto the GPU in its worker, greedy decode. The JavaScript memory of the page and the worker
// (V8 heap plus ArrayBuffer stores, sampled over the DevTools protocol) stays within two shards plus a stated
// constant over its baseline while loading, and the greedy ids equal the Node engine's (Dawn on lavapipe) on the same
// package.
// Lavapipe on both sides: on SwiftShader a token at this width takes minutes.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
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
});
