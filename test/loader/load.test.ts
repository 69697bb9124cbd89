/**
 * loadWeights onto a real GPU: buffers hold exactly the shard bytes, tensors split across shards become several
 * chunks, JS memory stays near the in-flight budget however many shards the model has, and failures free the GPU.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GpuLimitError, ModelIntegrityError, StorageError } from '../../src/errors.ts';
import type { Gpu } from '../../src/gpu/device.ts';
import type { Manifest } from '../../src/formats/manifest.ts';
import { loadWeights, type GpuWeight, type LoadProgress } from '../../src/loader/load.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { testGpus } from '../helpers/gpu.ts';
import { layoutManifest, tinyConfig, writePackageDir } from '../helpers/package.ts';

const gpus = await testGpus();
// A garbage collection before each memory sample, so the samples measure what is still referenced, not garbage
// the collector has yet to reach.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const MiB = 2 ** 20;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'llama-webgpu-load-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

/** Every chunk buffer's contents equal its byte ranges in the shard files. */
async function expectBuffersMatchShards(gpu: Gpu, dir: string, manifest: Manifest, weights: Map<string, GpuWeight>): Promise<void> {
  const shards = new Map<number, Uint8Array>();
  const shard = async (i: number) => {
    if (!shards.has(i)) {
      shards.clear(); // chunks come in shard order: keep one shard in memory
      shards.set(i, new Uint8Array(await readFile(path.join(dir, manifest.shards[i].file))));
    }
    return shards.get(i)!;
  };
  for (const t of manifest.tensors) {
    const w = weights.get(t.name)!;
    for (let i = 0; i < t.chunks.length; i++) {
      const c = t.chunks[i];
      for (const [range, buffer] of [[c.data, w.chunks[i].data], [c.scales, w.chunks[i].scales]] as const) {
        if (!range) {
          expect(buffer).toBeUndefined();
          continue;
        }
        const want = (await shard(range.shard)).subarray(range.offset, range.offset + range.byteLength);
        const got = new Uint8Array(await gpu.read(buffer!));
        if (Buffer.compare(got, want) !== 0) throw new Error(`${buffer!.label}: GPU bytes differ from ${manifest.shards[range.shard].file}`);
      }
    }
  }
}

function destroyAll(weights: Map<string, GpuWeight>): void {
  for (const w of weights.values()) for (const c of w.chunks) (c.data.destroy(), c.scales?.destroy());
}

describe.each(gpus)('loadWeights on $name', ({ gpu }) => {
  it('verify: a shard overwritten on disk (0xff) fails with ModelIntegrityError naming the model and shard; its buffers are freed', async () => {
    const id = `verify-${gpu.summary.device}`;
    const dir = path.join(root, id);
    const manifest = await writePackageDir(dir, tinyConfig(), { dtype: 'q8', shardBytes: 8 * 1024 });
    const store = createFsStore(root);
    destroyAll(await loadWeights(gpu, store, id, manifest, { verify: true }));
    const shard = manifest.shards[2];
    await writeFile(path.join(dir, shard.file), new Uint8Array(shard.byteSize).fill(0xff));
    const device = gpu.device;
    const createBuffer = device.createBuffer;
    const created: GPUBuffer[] = [];
    device.createBuffer = (d: GPUBufferDescriptor) => {
      const b = createBuffer.call(device, d);
      created.push(b);
      return b;
    };
    let err;
    try {
      err = await loadWeights(gpu, store, id, manifest, { verify: true }).catch((e) => e);
    } finally {
      device.createBuffer = createBuffer;
    }
    expect(err).toBeInstanceOf(ModelIntegrityError);
    expect([err.modelId, err.file]).toEqual([id, shard.file]);
    expect(err.message).toMatch(/shard-00002.bin: the stored file hashes to [0-9a-f]{64}, but the manifest says [0-9a-f]{64}.*Delete the model and install it again/);
    expect(created.length).toBeGreaterThan(0);
    for (const b of created) {
      device.pushErrorScope('validation');
      device.queue.writeBuffer(b, 0, new Uint8Array(4));
      expect((await device.popErrorScope())?.message).toMatch(/destroyed/i);
    }
    // Without verification the same bytes load: the sizes match, so nothing else notices.
    destroyAll(await loadWeights(gpu, store, id, manifest));
  });

  it('a reinstall of the id while it loads is refused rather than mixing two versions', async () => {
    const id = `swap-${gpu.summary.device}`;
    const dir = path.join(root, id);
    const manifest = await writePackageDir(dir, tinyConfig(), { dtype: 'q8', shardBytes: 8 * 1024 });
    const fsStore = createFsStore(root);
    const other = structuredClone(manifest);
    other.shards[0].sha256 = 'f'.repeat(64);
    let reads = 0;
    const store = {
      ...fsStore,
      async readShard(m: string, file: string) {
        if (++reads === 2) await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(other));
        return fsStore.readShard(m, file);
      },
    };
    const err = await loadWeights(gpu, store, id, manifest).catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.message).toMatch(new RegExp(`model "${id}": was reinstalled while it loaded.*Load it again`));
  });

  it('loads a q8 package with tensors split across shards into labelled buffers equal to the shard bytes', async () => {
    const dir = path.join(root, `tiny-q8-${gpu.summary.device}`);
    const manifest = await writePackageDir(dir, tinyConfig(), { dtype: 'q8', scaleDtype: 'f32', shardBytes: 8 * 1024 });
    const store = createFsStore(root);
    const id = path.basename(dir);
    expect(await store.getManifest(id)).toEqual(manifest);
    const progress: LoadProgress[] = [];
    const weights = await loadWeights(gpu, store, id, manifest, { onProgress: (p) => progress.push(p) });

    expect([...weights.keys()]).toEqual(manifest.tensors.map((t) => t.name));
    const split = manifest.tensors.filter((t) => t.chunks.length > 1);
    expect(split.length).toBeGreaterThan(3);
    for (const t of manifest.tensors) {
      const w = weights.get(t.name)!;
      expect([w.name, w.dtype, w.rows, w.cols]).toEqual(t.shape.length === 1 ? [t.name, 'f32', 1, t.shape[0]] : [t.name, 'q8', t.shape[0], t.shape[1]]);
      expect(w.chunks.map((c) => [c.rowStart, c.rows])).toEqual(t.chunks.map((c) => [c.rowStart, c.rows]));
      if (t.dtype === 'q8') expect(w.scaleDtype).toBe('f32');
      w.chunks.forEach((c, i) => {
        expect(c.data.label).toBe(`${t.name}[${i}]`);
        expect(c.data.usage).toBe(GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
        if (c.scales) expect(c.scales.label).toBe(`${t.name}[${i}].w_s`);
      });
    }
    await expectBuffersMatchShards(gpu, dir, manifest, weights);

    const last = progress.at(-1)!;
    expect(last.phase).toBe('done');
    expect(last.tensorsLoaded).toBe(manifest.tensors.length);
    expect(last.loadedBytes).toBe(last.totalBytes);
    expect(last.heldBytes).toBe(0);
    destroyAll(weights);
  });

  it('a chunk larger than the device allows fails before reading, naming the tensor', async () => {
    // 40000 x 1024 f32 = 156 MiB in one chunk: over lavapipe's 128 MiB binding (and WebGPU's default).
    const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    const vocab = Math.ceil((limit + 1) / 4096);
    const manifest = layoutManifest(tinyConfig({ vocabSize: vocab, dim: 1024, hiddenDim: 64, nHeads: 8, nKvHeads: 8, nLayers: 1 }), {
      dtype: 'f32',
      shardBytes: 2 ** 31,
    });
    const store = createFsStore(path.join(root, 'empty')); // nothing is read: the check comes first
    const err = await loadWeights(gpu, store, 'huge', manifest).catch((e) => e);
    expect(err).toBeInstanceOf(GpuLimitError);
    expect(err.message).toMatch(/^Tensor tokenEmbedding chunk 0 needs a \d+-byte buffer, but this GPU allows \d+ .*smaller shard size/);
  });
});

describe(`loadWeights memory on ${gpus[0]?.name}`, () => {
  const gpu = gpus[0]?.gpu;
  const shardBytes = 2 * MiB;
  let dir: string;
  let manifest: Manifest;
  beforeAll(async () => {
    if (!gpu) return;
    dir = path.join(root, 'many-shards');
    // About 90 MiB in 2 MiB shards.
    manifest = await writePackageDir(dir, tinyConfig({ dim: 768, hiddenDim: 2048, nLayers: 6, nHeads: 12, nKvHeads: 12, vocabSize: 2048 }), {
      dtype: 'f16',
      shardBytes,
      fill: 'bytes',
    });
  });

  it.each([
    { what: 'default budget (two shards: one copied while the next is read)', maxInFlightBytes: undefined, shardsHeld: 2 },
    { what: 'one shard at a time', maxInFlightBytes: shardBytes, shardsHeld: 1 },
  ])('holds at most $shardsHeld shard(s) with the $what, whatever the model size', async ({ maxInFlightBytes, shardsHeld }) => {
    if (!gpu) throw new Error('no test GPU');
    const total = manifest.shards.reduce((n, s) => n + s.byteSize, 0);
    expect(manifest.shards.length).toBeGreaterThan(40);
    const fsStore = createFsStore(root);
    gc();
    const before = process.memoryUsage();
    let peakHeld = 0;
    let peakArrayBuffers = 0;
    let peakRss = 0;
    const sample = () => {
      gc();
      const m = process.memoryUsage();
      peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers - before.arrayBuffers);
      peakRss = Math.max(peakRss, m.rss - before.rss);
    };
    // Samples memory as each shard arrives, when the loader holds the most (the shard being copied and this one).
    const store = { ...fsStore, readShard: async (id: string, file: string) => {
      const bytes = await fsStore.readShard(id, file);
      sample();
      return bytes;
    } };
    const weights = await loadWeights(gpu, store, 'many-shards', manifest, {
      maxInFlightBytes,
      onProgress: (p) => {
        sample();
        peakHeld = Math.max(peakHeld, p.peakHeldBytes);
        expect(p.peakHeldBytes).toBeLessThanOrEqual(shardsHeld * shardBytes);
      },
    });
    console.log(
      `loadWeights ${(total / MiB).toFixed(1)} MiB in ${manifest.shards.length} shards of ${shardBytes / MiB} MiB, ` +
        `maxInFlightBytes=${maxInFlightBytes ?? 'default'}: loader held <= ${(peakHeld / MiB).toFixed(1)} MiB, ` +
        `live process arrayBuffers grew <= ${(peakArrayBuffers / MiB).toFixed(1)} MiB, rss grew <= ${(peakRss / MiB).toFixed(1)} MiB ` +
        '(rss includes the software GPU driver holding the weights themselves)',
    );
    expect(peakHeld).toBeGreaterThan((shardsHeld - 1) * shardBytes);
    expect(peakHeld).toBeLessThanOrEqual(shardsHeld * shardBytes);
    // What the process still references is the loader's shards, not the model: at most the budget (whether a
    // read-ahead overlaps a copy depends on timing; buffers freed from earlier tests can offset the baseline).
    expect(peakArrayBuffers).toBeLessThanOrEqual(shardsHeld * shardBytes * 1.1);
    await expectBuffersMatchShards(gpu, dir, manifest, weights);
    destroyAll(weights);
  });

  it('an abort destroys the buffers created so far; a missing shard fails with a typed error', async () => {
    if (!gpu) throw new Error('no test GPU');
    const created: GPUBuffer[] = [];
    // Records the real buffers the loader creates, to check afterwards that each one was destroyed.
    const device = gpu.device;
    const createBuffer = device.createBuffer;
    device.createBuffer = (d: GPUBufferDescriptor) => {
      const b = createBuffer.call(device, d);
      created.push(b);
      return b;
    };
    try {
      const controller = new AbortController();
      const err = await loadWeights(gpu, createFsStore(root), 'many-shards', manifest, {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.tensorsLoaded >= 5) controller.abort();
        },
      }).catch((e) => e);
      expect(err.name).toBe('AbortError');
      const weightBuffers = created.filter((b) => !b.label.startsWith('readback'));
      expect(weightBuffers.length).toBeGreaterThan(5);
      for (const b of weightBuffers) {
        device.pushErrorScope('validation');
        device.queue.writeBuffer(b, 0, new Uint8Array(4));
        const e = await device.popErrorScope();
        expect(e?.message, `${b.label} should be destroyed`).toMatch(/destroyed/i);
      }

      // A package whose last shard is gone from the store.
      const broken = structuredClone(manifest);
      broken.shards.at(-1)!.file = 'shard-99999.bin';
      created.length = 0;
      const missing = await loadWeights(gpu, createFsStore(root), 'many-shards', broken).catch((e) => e);
      expect(missing).toBeInstanceOf(StorageError);
      expect(missing.message).toMatch(/model "many-shards": shard-99999.bin is not stored/);
      expect(created.length).toBeGreaterThan(0);
      for (const b of created) {
        device.pushErrorScope('validation');
        device.queue.writeBuffer(b, 0, new Uint8Array(4));
        expect((await device.popErrorScope())?.message).toMatch(/destroyed/i);
      }
    } finally {
      device.createBuffer = createBuffer;
    }
  });
});
