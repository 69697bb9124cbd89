/**
 * The engine when its GPU device goes away (device.destroy(), as a driver reset or a GPU process crash would) or
 * an allocation fails, and the sha256 check of stored files at load. stories260K, on both test adapters; each test
 * opens a device of its own, since it is destroyed.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../../src/engine.ts';
import { DeviceLostError, GpuOutOfMemoryError, ModelIntegrityError } from '../../src/errors.ts';
import { Gpu } from '../../src/gpu/device.ts';
import { nodeAdapter } from '../../src/gpu/node.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { convertedPackage, packagesRoot, removePackagesRoot } from '../helpers/convert.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel, STORIES260K_GREEDY_IDS } from '../helpers/models.ts';

const gpus = await testGpus();
afterAll(removePackagesRoot);
const have = haveSharedModel('stories260K/stories260K.bin');
const ID = 'stories-loss-f32';

/** Greedy ids from BOS: few, since every recovery compiles the pipelines again on a fresh device. */
async function ids(engine: Engine, maxTokens = STORIES260K_GREEDY_IDS.length): Promise<number[]> {
  const out: number[] = [];
  for await (const d of engine.generate([engine.config.bosId], { temperature: 0, maxTokens })) out.push(...d.tokenIds);
  return out;
}

describe.skipIf(!have).each(gpus)('device loss and integrity on $name', ({ name }) => {
  const store = createFsStore(packagesRoot());
  const openGpu = async () => Gpu.create((await nodeAdapter(name))!, { label: `loss.${name}`, busyWaits: true });

  beforeAll(async () => {
    await convertedPackage(ID, sharedModel('stories260K/stories260K.bin'), 'f32', sharedModel('stories260K/tok512.bin'));
  });

  it('a request running when the device is destroyed ends with DeviceLostError; the next one reloads and gives the same text', async () => {
    const engine = await createEngine({ model: ID, store, gpu: await openGpu() });
    try {
      const first = engine.gpu;
      const run = engine.generate([engine.config.bosId], { temperature: 0, maxTokens: 30 });
      const err = await (async () => {
        let n = 0;
        for await (const _ of run) if (++n === 3) first.device.destroy();
      })().catch((e) => e);
      expect(err).toBeInstanceOf(DeviceLostError);
      expect(err.code).toBe('DEVICE_LOST');
      expect([err.modelId, err.reason]).toEqual([ID, 'destroyed']);
      expect(err.message).toMatch(/GPU device was lost while model "stories-loss-f32" was in use \(destroyed.*Send the request again/);
      await expect(run.result).rejects.toBeInstanceOf(DeviceLostError);

      expect(await ids(engine)).toEqual(STORIES260K_GREEDY_IDS);
      expect(engine.gpu).not.toBe(first);
      // Lost while idle: the next request notices before it starts.
      engine.gpu.device.destroy();
      await new Promise((r) => setTimeout(r, 20));
      expect(await ids(engine)).toEqual(STORIES260K_GREEDY_IDS);
    } finally {
      await engine.unload();
    }
  });

  it('an allocation the GPU refuses while building the model is a GpuOutOfMemoryError, with the weights freed', async () => {
    const gpu = await openGpu();
    const device = gpu.device;
    const pop = device.popErrorScope.bind(device);
    const createBuffer = device.createBuffer.bind(device);
    const created: GPUBuffer[] = [];
    device.createBuffer = (d: GPUBufferDescriptor) => {
      const b = createBuffer(d);
      created.push(b);
      return b;
    };
    let building = false;
    // Stands in for a real out-of-memory (a software adapter allocates lazily): the scope around the model build reports one.
    device.popErrorScope = async () => {
      const real = await pop();
      return building ? ({ message: 'Out of memory (simulated)' } as GPUError) : real;
    };
    const err = await createEngine({
      model: ID,
      store,
      gpu,
      onProgress: (p) => {
        if (p.phase === 'compile') building = true;
      },
    }).catch((e) => e);
    expect(err).toBeInstanceOf(GpuOutOfMemoryError);
    expect(err.message).toMatch(/ran out of memory for the KV cache and activations of model "stories-loss-f32".*Out of memory \(simulated\).*smaller contextLength/);
    const weights = created.filter((b) => /\[\d+\]/.test(b.label)); // the loader labels chunk buffers "<tensor>[<chunk>]"
    expect(weights.length).toBeGreaterThan(5);
    for (const b of weights) {
      device.pushErrorScope('validation');
      device.queue.writeBuffer(b, 0, new Uint8Array(4));
      expect((await pop())?.message, b.label).toMatch(/destroyed/i);
    }
    device.destroy();
  });

  it('verifies stored files on the first load after install only (unless told), and refuses a shard overwritten with 0xff', async () => {
    const root = packagesRoot();
    const id = `${ID}-verify-${name}`;
    await convertedPackage(id, sharedModel('stories260K/stories260K.bin'), 'f32', sharedModel('stories260K/tok512.bin'));
    const manifest = (await store.getManifest(id))!;
    expect(await store.isVerified(id, manifest)).toBe(false);
    const gpu = await openGpu();
    try {
      await (await createEngine({ model: id, store, gpu })).unload();
      expect(await store.isVerified(id, manifest)).toBe(true);

      const shard = manifest.shards[0];
      const file = path.join(root, id, shard.file);
      const good = await readFile(file);
      await writeFile(file, new Uint8Array(shard.byteSize).fill(0xff));
      const err = await createEngine({ model: id, store, gpu, verify: 'always' }).catch((e) => e);
      expect(err).toBeInstanceOf(ModelIntegrityError);
      expect([err.modelId, err.file]).toEqual([id, shard.file]);
      expect(err.message).toMatch(/hashes to [0-9a-f]{64}, but the manifest says [0-9a-f]{64}.*Delete the model and install it again/);
      // Verified before: a plain load does not hash again, and the damage goes unnoticed (token 0 forever).
      const blind = await createEngine({ model: id, store, gpu });
      expect(new Set(await ids(blind, 8))).toEqual(new Set([0]));
      await blind.unload();
      await writeFile(file, good);
    } finally {
      gpu.device.destroy();
    }
  });

  it('refuses a bad verify option naming it', async () => {
    await expect(createEngine({ model: ID, store, verify: 'sometimes' as 'always' })).rejects.toThrow(/verify: must be 'first-load', 'always' or 'never', got "sometimes"/);
  });
});
