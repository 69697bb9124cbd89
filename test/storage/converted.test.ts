/**
 * The stores hold what the real converter writes: stories260K converted straight into each store's sink (as the
 * browser's conversion worker does), and a package directory written by the converter's directory sink, read by
 * the directory store as an installed model. Then the loader streams it onto the GPU.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint } from '../../src/formats/package-writer.ts';
import { loadWeights } from '../../src/loader/load.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { sha256Hex } from '../../src/storage/install.ts';
import type { ModelStore } from '../../src/storage/store.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';
import { STORE_KINDS, type TestStore } from './stores.ts';

const have = haveSharedModel('stories260K/stories260K.bin');
const gpus = await testGpus();

async function convertInto(sink: Parameters<typeof convertCheckpoint>[1]) {
  const ckpt = await openCheckpoint(sharedModel('stories260K/stories260K.bin'), { tokenizer: sharedModel('stories260K/tok512.bin') });
  try {
    return await convertCheckpoint(ckpt, sink, { quant: 'q8', shardBytes: 128 * 1024, name: 'stories260K' });
  } finally {
    await ckpt.close();
  }
}

async function expectIntact(store: ModelStore, id: string): Promise<void> {
  const [model] = await store.list();
  expect(model.id).toBe(id);
  expect(model.name).toBe('stories260K');
  expect(model.manifest.shards.length).toBeGreaterThan(1);
  for (const s of model.manifest.shards) expect(await sha256Hex(await store.readShard(id, s.file)), s.file).toBe(s.sha256);
  expect(await sha256Hex(await store.readFile(id, model.manifest.tokenizer.file))).toBe(model.manifest.tokenizer.sha256);
}

describe.runIf(have).each(STORE_KINDS)('stories260K converted into the %s store', (_kind, make) => {
  let t: TestStore;
  beforeEach(async () => {
    t = await make();
  });
  afterEach(() => t.cleanup());

  it('is installed once the converter commits, with every shard intact, and loads onto the GPU', async () => {
    const manifest = await convertInto(t.store.sink('stories260K'));
    expect(await t.store.getManifest('stories260K')).toEqual(manifest);
    await expectIntact(t.store, 'stories260K');
    if (!gpus[0]) throw new Error('no WebGPU test adapter (run scripts/setup-system.sh)');
    const { gpu } = gpus[0];
    const weights = await loadWeights(gpu, t.store, 'stories260K', manifest);
    expect(weights.size).toBe(manifest.tensors.length);
    const wq = manifest.tensors.find((x) => x.name === 'layers.1.wq')!;
    const shard = await t.store.readShard('stories260K', manifest.shards[wq.chunks[0].data.shard].file);
    const { offset, byteLength } = wq.chunks[0].data;
    expect(new Uint8Array(await gpu.read(weights.get('layers.1.wq')!.chunks[0].data))).toEqual(shard.subarray(offset, offset + byteLength));
    for (const w of weights.values()) for (const c of w.chunks) (c.data.destroy(), c.scales?.destroy());
  });
});

describe.runIf(have)('a package directory written by the converter', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'llama-webgpu-converted-'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('is an installed model of the directory store', async () => {
    await convertInto(await directorySink(path.join(root, 'stories260K')));
    await expectIntact(createFsStore(root), 'stories260K');
  });
});
