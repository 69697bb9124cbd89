/**
 * Builds model packages (src/formats/manifest.ts) for tests, without a converter: a layout of tensors into
 * shards, then shard bytes generated one shard at a time (so a package of many shards never sits in memory whole).
 *
 *   const pkg = await buildPackage(tinyConfig(), { dtype: 'q8', shardBytes: 64 * 1024 });   // in memory
 *   await writePackageDir(dir, tinyConfig(), { ... });                                     // to disk, streamed
 *   const m = layoutManifest(llamaConfig('70B'), { dtype: 'q4' });                          // manifest only
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_SHARD_BYTES,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  SHARD_ALIGN,
  type Manifest,
  type ShardEntry,
  type TensorEntry,
} from '../../src/formats/manifest.ts';
import { encodeWeights, encodedByteLengths, type ScaleDtype, type WeightDtype } from '../../src/formats/quant.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { SYNTH_SHAPES } from '../../src/model/synthetic.ts';
import { randomArray, rng } from './gpu.ts';

export interface PackageOptions {
  /** Encoding of the matrices (vectors are always f32). Default f16. */
  dtype?: WeightDtype;
  scaleDtype?: ScaleDtype;
  /** Largest shard (default DEFAULT_SHARD_BYTES). */
  shardBytes?: number;
  name?: string;
  /** Tie the classifier to the embedding (no wcls). Default true. */
  sharedClassifier?: boolean;
  /** Tokenizer file bytes (default: a few arbitrary bytes; loaders of real tokenizers need a real ModelProto). */
  tokenizer?: Uint8Array;
  /**
   * 'weights': small random weights encoded with encodeWeights (a model the engine can run);
   * 'bytes': random bytes (fast; for storage and loader tests that only compare bytes). Default 'weights'.
   */
  fill?: 'weights' | 'bytes';
  seed?: number;
}

export interface BuiltPackage {
  manifest: Manifest;
  /** Every file but manifest.json, by name. */
  files: Map<string, Uint8Array>;
}

export function tinyConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    dim: 64, hiddenDim: 172, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 256, maxSeqLen: 128,
    normEps: 1e-5, ropeTheta: 10000, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none',
    ...overrides,
  };
}

/** The published Llama 2 shapes. */
export function llamaConfig(size: '7B' | '13B' | '70B'): ModelConfig {
  const shape = ({ '7B': 'llama2-7b', '13B': 'llama2-13b', '70B': 'llama2-70b' } as const)[size];
  return tinyConfig({ ...SYNTH_SHAPES[shape], chatTemplate: 'llama-2' });
}

/** Tensor names and shapes in layer order (the order converters write them). */
export function tensorShapes(c: ModelConfig, sharedClassifier = true): { name: string; shape: number[] }[] {
  const kv = (c.dim / c.nHeads) * c.nKvHeads;
  const out = [{ name: 'tokenEmbedding', shape: [c.vocabSize, c.dim] }];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `layers.${l}.`;
    out.push(
      { name: p + 'rmsAtt', shape: [c.dim] },
      { name: p + 'wq', shape: [c.dim, c.dim] },
      { name: p + 'wk', shape: [kv, c.dim] },
      { name: p + 'wv', shape: [kv, c.dim] },
      { name: p + 'wo', shape: [c.dim, c.dim] },
      { name: p + 'rmsFfn', shape: [c.dim] },
      { name: p + 'w1', shape: [c.hiddenDim, c.dim] },
      { name: p + 'w2', shape: [c.dim, c.hiddenDim] },
      { name: p + 'w3', shape: [c.hiddenDim, c.dim] },
    );
  }
  out.push({ name: 'rmsFinal', shape: [c.dim] });
  if (!sharedClassifier) out.push({ name: 'wcls', shape: [c.vocabSize, c.dim] });
  return out;
}

const alignUp = (n: number) => Math.ceil(n / SHARD_ALIGN) * SHARD_ALIGN;

/**
 * Lays tensors out into shards: each 2-D tensor is split into row chunks that fill the current shard, a new shard
 * starts when not even one row fits. Shard sha256 fields are placeholders ("0" * 64) until bytes are generated.
 */
export function layoutManifest(c: ModelConfig, options: PackageOptions = {}): Manifest {
  const dtype = options.dtype ?? 'f16';
  const scaleDtype = options.scaleDtype ?? 'f16';
  const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  const sharedClassifier = options.sharedClassifier ?? true;
  const shards: ShardEntry[] = [{ file: shardName(0), byteSize: 0, sha256: '0'.repeat(64) }];
  const tensors: TensorEntry[] = [];
  let used = 0;
  const place = (data: number, scales: number) => {
    const d = alignUp(used);
    const s = scales ? alignUp(d + data) : d + data;
    return { d, s, end: s + scales };
  };
  const newShard = () => {
    shards[shards.length - 1].byteSize = used;
    shards.push({ file: shardName(shards.length), byteSize: 0, sha256: '0'.repeat(64) });
    used = 0;
  };
  for (const { name, shape } of tensorShapes(c, sharedClassifier)) {
    const vector = shape.length === 1;
    const tdtype: WeightDtype = vector ? 'f32' : dtype;
    const rows = vector ? 1 : shape[0];
    const cols = vector ? shape[0] : shape[1];
    const entry: TensorEntry = { name, dtype: tdtype, shape, chunks: [] };
    if (tdtype === 'q8' || tdtype === 'q4') entry.scaleDtype = scaleDtype;
    let rowStart = 0;
    while (rowStart < rows) {
      // The most rows that fit in the rest of this shard (binary search: byte lengths grow with rows).
      let lo = 0;
      let hi = vector ? 1 : rows - rowStart;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        const b = encodedByteLengths(tdtype, mid, cols, scaleDtype);
        if (place(b.data, tdtype === 'q8' || tdtype === 'q4' ? b.scales : 0).end <= shardBytes) lo = mid;
        else hi = mid - 1;
      }
      if (lo === 0) {
        if (used === 0) throw new Error(`layoutManifest: one row of ${name} does not fit a ${shardBytes}-byte shard`);
        newShard();
        continue;
      }
      const b = encodedByteLengths(tdtype, lo, cols, scaleDtype);
      const quant = tdtype === 'q8' || tdtype === 'q4';
      const at = place(b.data, quant ? b.scales : 0);
      const shard = shards.length - 1;
      entry.chunks.push({
        rowStart,
        rows: lo,
        data: { shard, offset: at.d, byteLength: b.data },
        ...(quant ? { scales: { shard, offset: at.s, byteLength: b.scales } } : {}),
      });
      used = at.end;
      rowStart += lo;
    }
    tensors.push(entry);
  }
  shards[shards.length - 1].byteSize = used;
  return {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    name: options.name ?? 'test-model',
    config: c,
    tokenizer: { file: 'tokenizer.model', byteSize: 0, sha256: '0'.repeat(64) },
    sharedClassifier,
    tensors,
    shards,
    source: { format: 'test' },
  };
}

export function shardName(i: number): string {
  return `shard-${String(i).padStart(5, '0')}.bin`;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Yields the package's files one at a time (each shard generated, hashed, yielded, then free to collect), and
 * returns the finished manifest with every sha256 filled in.
 */
export async function* packageFiles(
  c: ModelConfig,
  options: PackageOptions = {},
): AsyncGenerator<{ name: string; bytes: Uint8Array }, Manifest> {
  const manifest = layoutManifest(c, options);
  const fill = options.fill ?? 'weights';
  const seed = options.seed ?? 1;
  const tokenizer = options.tokenizer ?? new TextEncoder().encode('test tokenizer: not a ModelProto\n');
  manifest.tokenizer.byteSize = tokenizer.byteLength;
  manifest.tokenizer.sha256 = await sha256Hex(tokenizer);
  yield { name: manifest.tokenizer.file, bytes: tokenizer };

  for (let s = 0; s < manifest.shards.length; s++) {
    const bytes = new Uint8Array(manifest.shards[s].byteSize);
    manifest.tensors.forEach((t, ti) => {
      t.chunks.forEach((chunk, ci) => {
        if (chunk.data.shard !== s) return;
        const chunkSeed = seed * 1_000_003 + ti * 1009 + ci;
        if (fill === 'bytes') {
          const r = rng(chunkSeed);
          for (const range of chunk.scales ? [chunk.data, chunk.scales] : [chunk.data]) {
            const words = new Uint32Array(bytes.buffer, range.offset, range.byteLength / 4);
            for (let i = 0; i < words.length; i++) words[i] = (r() * 4294967296) >>> 0;
          }
          return;
        }
        const cols = t.shape.length === 1 ? t.shape[0] : t.shape[1];
        const values = randomArray(chunk.rows * cols, chunkSeed, t.shape.length === 1 ? 0.1 : 0.05);
        if (t.shape.length === 1) for (let i = 0; i < values.length; i++) values[i] += 1; // norm weights near 1
        const enc = encodeWeights(values, chunk.rows, cols, t.dtype, t.scaleDtype ?? 'f16');
        bytes.set(enc.data, chunk.data.offset);
        if (enc.scales && chunk.scales) bytes.set(enc.scales, chunk.scales.offset);
      });
    });
    manifest.shards[s].sha256 = await sha256Hex(bytes);
    yield { name: manifest.shards[s].file, bytes };
  }
  return manifest;
}

/** The whole package in memory. */
export async function buildPackage(c: ModelConfig, options: PackageOptions = {}): Promise<BuiltPackage> {
  const files = new Map<string, Uint8Array>();
  const gen = packageFiles(c, options);
  for (;;) {
    const r = await gen.next();
    if (r.done) return { manifest: r.value, files };
    files.set(r.value.name, r.value.bytes);
  }
}

/** Writes a package directory (manifest.json last, as a store's commit does), one shard in memory at a time. */
export async function writePackageDir(dir: string, c: ModelConfig, options: PackageOptions = {}): Promise<Manifest> {
  await mkdir(dir, { recursive: true });
  const gen = packageFiles(c, options);
  for (;;) {
    const r = await gen.next();
    if (r.done) {
      await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(r.value, null, 2));
      return r.value;
    }
    await writeFile(path.join(dir, r.value.name), r.value.bytes);
  }
}

/** Writes an in-memory package to a directory. */
export async function writeBuiltPackage(dir: string, pkg: BuiltPackage): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of pkg.files) await writeFile(path.join(dir, name), bytes);
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(pkg.manifest, null, 2));
}
