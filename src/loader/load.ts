/**
 * Streams a package's shards from a store into GPU buffers, one buffer per tensor chunk (data and scales
 * separately), in layer order, holding at most `maxInFlightBytes` of shard bytes in JS memory at a time: the next
 * shard is read while the current one is copied, and each shard is released once the GPU has taken its bytes
 * (its memory freed at once, not left to the garbage collector). Peak memory therefore depends on the shard size,
 * not on the model size.
 */
import { GpuLimitError, GpuOutOfMemoryError, ModelFormatError, ModelIntegrityError, StorageError } from '../errors.ts';
import type { Gpu } from '../gpu/device.ts';
import { type GpuWeight, type GpuWeightChunk } from '../gpu/weights.ts';
import type { ByteRange, Manifest, ShardEntry } from '../formats/manifest.ts';
import { releaseBytes } from '../storage/release.ts';
import { filesFingerprint, type ModelStore } from '../storage/store.ts';

export type { GpuWeight, GpuWeightChunk } from '../gpu/weights.ts';

export interface LoadProgress {
  phase: 'weights' | 'done';
  /** Weight bytes copied to the GPU so far (the same measure as FitReport.weightBytes). */
  loadedBytes: number;
  totalBytes: number;
  tensorsLoaded: number;
  tensorCount: number;
  /** Shard bytes the loader holds in memory now, and the most it has held during this load. */
  heldBytes: number;
  peakHeldBytes: number;
}

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /**
   * Shard bytes held at once (default two of the largest shard: one being copied, one being read). One shard is
   * always held, so a budget below the shard size means one shard at a time with no read-ahead.
   */
  maxInFlightBytes?: number;
  /**
   * Hash every shard (sha256, with crypto.subtle) against the manifest while it is copied to the GPU; a mismatch
   * ends the load with ModelIntegrityError naming the shard. Default false.
   */
  verify?: boolean;
}

export { GpuOutOfMemoryError } from '../errors.ts';

interface ChunkJob {
  tensor: GpuWeight;
  index: number;
  rowStart: number;
  rows: number;
  data: ByteRange;
  scales?: ByteRange;
}

export async function loadWeights(
  gpu: Gpu,
  store: ModelStore,
  id: string,
  manifest: Manifest,
  options: LoadOptions = {},
): Promise<Map<string, GpuWeight>> {
  const { signal, onProgress } = options;
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const weights = new Map<string, GpuWeight>();
  const jobsByShard = new Map<number, ChunkJob[]>();
  const remaining = new Map<GpuWeight, number>();
  let totalBytes = 0;

  for (const t of manifest.tensors) {
    const matrix = t.shape.length === 2;
    if (!matrix && (t.shape.length !== 1 || t.chunks.length !== 1 || t.dtype !== 'f32')) {
      throw new ModelFormatError(`model "${id}" manifest`, `a vector tensor must be f32 in one chunk (got ${t.dtype}, ${t.chunks.length} chunks, shape [${t.shape}]); convert the model again`, t.name);
    }
    const w: GpuWeight = {
      name: t.name,
      dtype: t.dtype,
      rows: matrix ? t.shape[0] : 1,
      cols: matrix ? t.shape[1] : t.shape[0],
      scaleDtype: t.scaleDtype ?? 'f16',
      chunks: [],
    };
    weights.set(t.name, w);
    remaining.set(w, t.chunks.length);
    t.chunks.forEach((c, index) => {
      for (const r of c.scales ? [c.data, c.scales] : [c.data]) {
        if (r.byteLength > limit) {
          throw new GpuLimitError(
            `Tensor ${t.name} chunk ${index} needs a ${r.byteLength}-byte buffer, but this GPU allows ${limit} ` +
              `(maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize}, maxBufferSize ${gpu.limits.maxBufferSize}). ` +
              'Convert the model with a smaller shard size, or use a GPU with higher limits.',
          );
        }
        if (r.byteLength % 4 !== 0 || r.offset % 4 !== 0) {
          throw new ModelFormatError(`model "${id}" manifest`, `chunk ${index} is not 4-byte aligned; convert the model again`, t.name);
        }
        totalBytes += r.byteLength;
      }
      if (c.scales && c.scales.shard !== c.data.shard) {
        throw new ModelFormatError(`model "${id}" manifest`, `chunk ${index} has its data and scales in different shards; convert the model again`, t.name);
      }
      const jobs = jobsByShard.get(c.data.shard) ?? [];
      jobs.push({ tensor: w, index, rowStart: c.rowStart, rows: c.rows, data: c.data, scales: c.scales });
      jobsByShard.set(c.data.shard, jobs);
    });
  }
  // Shards in the order their tensors appear in the manifest (layer order), each read exactly once.
  const order = [...jobsByShard.keys()];
  const shardSize = (i: number) => manifest.shards[i].byteSize;
  const maxInFlight = options.maxInFlightBytes ?? 2 * Math.max(0, ...order.map(shardSize));

  let heldBytes = 0;
  let peakHeldBytes = 0;
  let loadedBytes = 0;
  let tensorsLoaded = 0;
  const report = (phase: LoadProgress['phase']) =>
    onProgress?.({ phase, loadedBytes, totalBytes, tensorsLoaded, tensorCount: weights.size, heldBytes, peakHeldBytes });
  const read = (k: number) => {
    // Counted from the moment the read starts: the store allocates the shard's buffer then.
    heldBytes += shardSize(order[k]);
    peakHeldBytes = Math.max(peakHeldBytes, heldBytes);
    const bytes = store.readShard(id, manifest.shards[order[k]].file);
    // A read-ahead may fail before it is awaited; the failure is reported when it is (not as an unhandled rejection).
    bytes.catch(() => {});
    return bytes;
  };

  const created: GPUBuffer[] = [];
  let next: Promise<Uint8Array> | null = null;
  try {
    report('weights');
    if (order.length > 0) next = read(0);
    for (let k = 0; k < order.length; k++) {
      const shardIndex = order[k];
      const shard = manifest.shards[shardIndex];
      let bytes: Uint8Array | null = await next!;
      next = null;
      signal?.throwIfAborted();
      if (bytes.byteLength !== shard.byteSize) {
        throw new ModelFormatError(`model "${id}" ${shard.file}`, `is ${bytes.byteLength} bytes, the manifest says ${shard.byteSize}; delete the model and install it again`);
      }
      // Hashed on the platform's crypto threads while this thread copies the shard to the GPU.
      const digest = options.verify ? crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>) : null;
      digest?.catch(() => {});
      // Read ahead only while both shards fit the in-flight budget.
      if (k + 1 < order.length && heldBytes + shardSize(order[k + 1]) <= maxInFlight) next = read(k + 1);

      gpu.device.pushErrorScope('out-of-memory');
      let oom: GPUError | null;
      try {
        for (const job of jobsByShard.get(shardIndex)!) {
          const label = `${job.tensor.name}[${job.index}]`;
          const chunk: GpuWeightChunk = { rowStart: job.rowStart, rows: job.rows, data: upload(gpu, label, bytes, job.data, created) };
          if (job.scales) chunk.scales = upload(gpu, `${label}.w_s`, bytes, job.scales, created);
          job.tensor.chunks[job.index] = chunk;
          loadedBytes += job.data.byteLength + (job.scales?.byteLength ?? 0);
          const left = remaining.get(job.tensor)! - 1;
          remaining.set(job.tensor, left);
          if (left === 0) tensorsLoaded++;
        }
      } finally {
        oom = await gpu.device.popErrorScope();
      }
      if (oom) {
        throw new GpuOutOfMemoryError(
          `The GPU ran out of memory loading ${shard.file} of model "${id}" after ${loadedBytes} of ${totalBytes} weight bytes: ${oom.message}. ` +
            'Close other GPU-heavy tabs or apps, or choose a smaller or more quantized model.',
        );
      }
      // writeBuffer copies the bytes when called; waiting for the queue before the next shard keeps the driver's
      // staging copies from piling up, so memory outside JS is also bounded by about a shard.
      await gpu.device.queue.onSubmittedWorkDone();
      if (digest) checkSha256(id, shard, await digest);
      // writeBuffer has copied the bytes; the shard's memory is freed now rather than at the next GC.
      releaseBytes(bytes);
      bytes = null;
      heldBytes -= shard.byteSize;
      signal?.throwIfAborted();
      report('weights');
      if (k + 1 < order.length && !next) next = read(k + 1);
    }
    // A commit of the id between the manifest's read and now (a reinstall) may have mixed two versions' shards.
    const now = await store.getManifest(id);
    if (!now || filesFingerprint(now) !== filesFingerprint(manifest)) {
      throw new StorageError(id, `was ${now ? 'reinstalled' : 'deleted'} while it loaded, so what was loaded may mix two versions. Load it again.`);
    }
  } catch (e) {
    await next?.catch(() => {});
    for (const b of created) b.destroy();
    throw e;
  }
  report('done');
  return weights;
}

/** Throws ModelIntegrityError unless `digest` (a SHA-256) is the manifest's sha256 of `file`. */
export function checkSha256(id: string, file: ShardEntry, digest: ArrayBuffer): void {
  const sha = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  if (sha !== file.sha256) {
    throw new ModelIntegrityError(
      id,
      file.file,
      `the stored file hashes to ${sha}, but the manifest says ${file.sha256}: it was changed or damaged after install. ` +
        'Delete the model and install it again.',
    );
  }
}

function upload(gpu: Gpu, label: string, shard: Uint8Array, range: ByteRange, created: GPUBuffer[]): GPUBuffer {
  const buffer = gpu.device.createBuffer({
    label,
    size: Math.max(4, range.byteLength),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
  });
  created.push(buffer);
  if (range.byteLength > 0) gpu.device.queue.writeBuffer(buffer, 0, shard, range.offset, range.byteLength);
  return buffer;
}
