/**
 * Streaming model-package writer. Tensors are converted row-chunk by row-chunk: each chunk is read from the
 * checkpoint as float32 in bounded pieces, encoded (quant.ts) and appended to the current shard, with every data and
 * scales range aligned to SHARD_ALIGN and no chunk crossing a shard. Memory stays at one read piece plus one chunk's
 * scales, whatever the model size. Any failure aborts the sink, so no partial package is left behind.
 */
import { ConvertOptionsError, ModelFormatError } from '../errors.ts';
import { checkPackageTokenizer } from '../tokenizer/check.ts';
import { encodeModelProto } from '../tokenizer/proto.ts';
import type { Checkpoint, CheckpointTensor } from './checkpoint.ts';
import { checkConfig, checkTensors, expectedShapes } from './checkpoint.ts';
import { createSha256, sha256Hex, type Sha256 } from './hash.ts';
import {
  DEFAULT_SHARD_BYTES, MANIFEST_FORMAT, MANIFEST_VERSION, SHARD_ALIGN,
  type ByteRange, type Manifest, type ShardEntry, type TensorEntry,
} from './manifest.ts';
import { keptTensor } from './keep.ts';
import { K_BLOCK, K_BLOCK_BYTES } from './kquant.ts';
import { encodeWeights, groupsPerRow, isQuantized, type EncodedWeights, type WeightDtype } from './quant.ts';
import { checkConvertQuant, tensorDtype, type ConvertQuant } from './quant-plan.ts';

export interface ShardWriter {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Where a package goes: a directory (node-sink.ts) or IndexedDB (src/storage/). */
export interface PackageSink {
  /** A whole small file (tokenizer.model). */
  writeFile(name: string, bytes: Uint8Array): Promise<void>;
  openShard(name: string): Promise<ShardWriter>;
  /** Writes manifest.json and makes the package visible, atomically. */
  commit(manifest: Manifest): Promise<void>;
  /** Removes everything written so far. */
  abort(): Promise<void>;
}

export interface ConvertProgress {
  tensor: string;
  /** Elements converted so far, of `total` in the whole model. */
  done: number;
  total: number;
  /** Shard bytes written so far. */
  bytes: number;
}

export interface ConvertOptions {
  /**
   * How tensors are encoded (quant-plan.ts): 'q4' is the 4-bit mix, 'q4-pure' every matrix at q4; 'keep' keeps a
   * GGUF's matrices in the encoding that holds their values exactly (keep.ts).
   */
  quant: ConvertQuant;
  shardBytes?: number;
  name?: string;
  onProgress?: (p: ConvertProgress) => void;
  signal?: AbortSignal;
  /** Continues an interrupted conversion of the same checkpoint and options into the same staging area. */
  resume?: ShardResume;
}

/**
 * Which shards an earlier, interrupted conversion already wrote (importFromUrl keeps a journal). A shard's place
 * in the package depends only on the tensors' shapes, encodings and the shard size, so a reused shard is skipped
 * whole: its rows are neither read nor encoded again.
 */
export interface ShardResume {
  /** The entry of shard `file` when it is already written intact with the bytes this conversion would write; else null. */
  reuse(index: number, file: string): Promise<ShardEntry | null>;
  /** After each shard this conversion wrote is closed. */
  written(index: number, entry: ShardEntry): Promise<void>;
}

/** Float32 elements read from the checkpoint at once (16 MiB), so a 7B tensor streams in small pieces. */
const READ_ELEMENTS = 4 << 20;

export function shardFileName(index: number): string {
  return `shard-${String(index).padStart(5, '0')}.bin`;
}

/** Index of the first NaN or infinity, or -1: a corrupt weight would otherwise poison every token silently. */
function firstNonFinite(v: Float32Array): number {
  for (let i = 0; i < v.length; i++) if (v[i] - v[i] !== 0) return i;
  return -1;
}

const alignUp = (n: number) => Math.ceil(n / SHARD_ALIGN) * SHARD_ALIGN;

/** Bytes per row of data and of f16 scales in `dtype` (f16 data rows pair up into whole u32s; chunks keep rows even). */
function rowBytes(dtype: WeightDtype, cols: number): { data: number; scales: number } {
  const g = groupsPerRow(cols);
  switch (dtype) {
    case 'f32': return { data: cols * 4, scales: 0 };
    case 'f16': return { data: cols * 2, scales: 0 };
    case 'q8': return { data: g * 32, scales: g * 2 };
    case 'q4': return { data: g * 16, scales: g * 2 };
    default: return { data: (cols / K_BLOCK) * K_BLOCK_BYTES[dtype].data, scales: dtype === 'q6k' ? (cols / K_BLOCK) * 2 : 0 };
  }
}

/** Rows [rowStart, rowStart + rows) of `t` read as float32, checked finite and encoded in `dtype`. */
async function readEncoded(t: CheckpointTensor, rowStart: number, rows: number, cols: number, dtype: WeightDtype, file: string): Promise<EncodedWeights> {
  const values = await t.readRows(rowStart, rows);
  if (values.length !== rows * cols) throw new ModelFormatError(file, `read ${values.length} values for ${rows} rows of ${cols}`, t.name);
  const bad = firstNonFinite(values);
  if (bad >= 0) {
    throw new ModelFormatError(file, `row ${rowStart + Math.floor(bad / cols)} holds ${values[bad]}; the weights are corrupt, download the checkpoint again`, t.sourceName ?? t.name);
  }
  return encodeWeights(values, rows, cols, dtype);
}

/** Appends aligned ranges to numbered shards, hashing as it goes. */
class ShardPacker {
  readonly shards: ShardEntry[] = [];
  written = 0;
  private current: { w: ShardWriter; hash: Sha256; size: number } | { reused: ShardEntry; size: number } | null = null;
  constructor(private sink: PackageSink, private shardBytes: number, private resume?: ShardResume) {}

  /** The current shard was written by an earlier conversion: its chunks are skipped (skip()), not written. */
  get reusing(): boolean {
    return this.current !== null && 'reused' in this.current;
  }

  /** Moves past a chunk placed in a reused shard. */
  skip(where: { data: ByteRange; scales?: ByteRange }): void {
    const end = where.scales ? where.scales.offset + where.scales.byteLength : where.data.offset + where.data.byteLength;
    this.written += end - this.current!.size;
    this.current!.size = end;
  }

  /** Makes room for a chunk of `data` + `scales` bytes in one shard; returns where its ranges go. */
  async place(data: number, scales: number): Promise<{ data: ByteRange; scales?: ByteRange }> {
    const fits = (start: number) => (scales ? alignUp(alignUp(start) + data) + scales : alignUp(start) + data) <= this.shardBytes;
    if (!this.current || (this.current.size > 0 && !fits(this.current.size))) await this.nextShard();
    const cur = this.current!;
    const shard = this.shards.length;
    const dataOffset = alignUp(cur.size);
    const scalesOffset = alignUp(dataOffset + data);
    return {
      data: { shard, offset: dataOffset, byteLength: data },
      scales: scales ? { shard, offset: scalesOffset, byteLength: scales } : undefined,
    };
  }

  /** Writes `bytes` at `offset` of the current shard (zero padding up to it). */
  async write(offset: number, bytes: Uint8Array): Promise<void> {
    const cur = this.current!;
    if (offset > cur.size) await this.append(new Uint8Array(offset - cur.size));
    await this.append(bytes);
  }

  private async append(bytes: Uint8Array): Promise<void> {
    const cur = this.current;
    if (!cur || 'reused' in cur) throw new Error('ShardPacker: write into a reused shard');
    cur.hash.update(bytes);
    await cur.w.write(bytes);
    cur.size += bytes.byteLength;
    this.written += bytes.byteLength;
  }

  private async nextShard(): Promise<void> {
    await this.finish();
    const file = shardFileName(this.shards.length);
    const reused = await this.resume?.reuse(this.shards.length, file);
    this.current = reused ? { reused, size: 0 } : { w: await this.sink.openShard(file), hash: await createSha256(), size: 0 };
  }

  async finish(): Promise<void> {
    const cur = this.current;
    if (!cur) return;
    this.current = null;
    if ('reused' in cur) {
      this.shards.push(cur.reused);
      return;
    }
    await cur.w.close();
    const entry = { file: shardFileName(this.shards.length), byteSize: cur.size, sha256: await cur.hash.digest() };
    this.shards.push(entry);
    await this.resume?.written(this.shards.length - 1, entry);
  }
}

/** Writes the package; any failure aborts the sink. (writePackage leaves what to keep after a failure to the caller.) */
export async function convertCheckpoint(ckpt: Checkpoint, sink: PackageSink, options: ConvertOptions): Promise<Manifest> {
  try {
    return await writePackage(ckpt, sink, options);
  } catch (err) {
    await sink.abort().catch(() => undefined);
    throw err;
  }
}

export async function writePackage(ckpt: Checkpoint, sink: PackageSink, options: ConvertOptions): Promise<Manifest> {
  const file = ckpt.file ?? ckpt.format;
  const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!Number.isSafeInteger(shardBytes) || shardBytes < 4 * SHARD_ALIGN) {
    throw new ConvertOptionsError(`shard size ${shardBytes} bytes is too small; use at least ${4 * SHARD_ALIGN} bytes (the default is ${DEFAULT_SHARD_BYTES})`);
  }
  checkConvertQuant(options.quant);
  checkConfig(ckpt.config, file);
  checkTensors(ckpt, file);
  const signal = options.signal;
  signal?.throwIfAborted();

  let tokenizer = ckpt.tokenizerModel;
  if (!tokenizer) {
    if (!ckpt.vocab) throw new ModelFormatError(file, 'the checkpoint has no tokenizer; pass the tokenizer.model or tokenizer.bin that belongs to it (--tokenizer)', 'tokenizer');
    tokenizer = encodeModelProto(ckpt.vocab);
  }
  await checkPackageTokenizer(tokenizer, ckpt.tokenizerFile ?? file, ckpt.config.vocabSize);
  await sink.writeFile('tokenizer.model', tokenizer);

  const names = [...expectedShapes(ckpt.config, ckpt.tensors.has('wcls')).keys()];
  let total = 0;
  for (const n of names) total += ckpt.tensors.get(n)!.shape.reduce((a, b) => a * b, 1);
  let done = 0;
  const packer = new ShardPacker(sink, shardBytes, options.resume);
  const entries: TensorEntry[] = [];

  for (const name of names) {
    const t = ckpt.tensors.get(name)!;
    const kept = options.quant === 'keep' && t.shape.length === 2 ? keptTensor(t, file) : undefined;
    const plan = { nLayers: ckpt.config.nLayers, sharedClassifier: !ckpt.tensors.has('wcls') };
    const dtype = kept ? kept.dtype : options.quant === 'keep' ? 'f32' : tensorDtype(options.quant, name, t.shape, plan);
    const [rows, cols] = t.shape.length === 1 ? [1, t.shape[0]] : t.shape;
    const per = rowBytes(dtype, cols);
    const budget = shardBytes - 2 * SHARD_ALIGN;
    let chunkRows = Math.floor(budget / (per.data + per.scales));
    if (chunkRows < rows) chunkRows -= chunkRows % 2; // even row counts keep f16 halves and scales whole u32s
    if (chunkRows < 1) {
      throw new ConvertOptionsError(`shard size ${shardBytes} bytes cannot hold even two rows of ${name} (${per.data + per.scales} bytes a row); use a larger shard size`);
    }
    chunkRows = Math.min(chunkRows, rows);
    const entry: TensorEntry = { name, dtype, shape: t.shape.slice(), chunks: [] };
    if (isQuantized(dtype)) entry.scaleDtype = 'f16';

    for (let r0 = 0; r0 < rows; r0 += chunkRows) {
      const n = Math.min(chunkRows, rows - r0);
      const pad4 = (x: number) => Math.ceil(x / 4) * 4;
      const dataLen = pad4(n * per.data);
      const scalesLen = pad4(n * per.scales);
      const where = await packer.place(dataLen, scalesLen);
      if (packer.reusing) {
        packer.skip(where);
        done += n * cols;
        options.onProgress?.({ tensor: name, done, total, bytes: packer.written });
        entry.chunks.push({ rowStart: r0, rows: n, data: where.data, ...(where.scales ? { scales: where.scales } : {}) });
        continue;
      }
      const scaleParts: Uint8Array[] = [];
      let dataOffset = where.data.offset;
      const pieceRows = Math.max(2, Math.floor(READ_ELEMENTS / cols / 2) * 2);
      for (let p0 = 0; p0 < n; p0 += pieceRows) {
        signal?.throwIfAborted();
        const m = Math.min(pieceRows, n - p0);
        const enc = kept ? await kept.read(r0 + p0, m) : await readEncoded(t, r0 + p0, m, cols, dtype, file);
        await packer.write(dataOffset, enc.data);
        dataOffset += enc.data.byteLength;
        if (enc.scales) scaleParts.push(enc.scales);
        done += m * cols;
        options.onProgress?.({ tensor: name, done, total, bytes: packer.written });
      }
      let scalesOffset = where.scales?.offset ?? 0;
      for (const s of scaleParts) {
        await packer.write(scalesOffset, s);
        scalesOffset += s.byteLength;
      }
      entry.chunks.push({ rowStart: r0, rows: n, data: where.data, ...(where.scales ? { scales: where.scales } : {}) });
    }
    entries.push(entry);
  }
  await packer.finish();

  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    name: options.name ?? (file.replace(/\.[^./]*$/, '') || 'model'),
    config: { ...ckpt.config },
    tokenizer: { file: 'tokenizer.model', byteSize: tokenizer.byteLength, sha256: await sha256Hex(tokenizer) },
    sharedClassifier: !ckpt.tensors.has('wcls'),
    tensors: entries,
    shards: packer.shards,
    source: { format: ckpt.format, file, quant: options.quant },
  };
  signal?.throwIfAborted();
  await sink.commit(manifest);
  return manifest;
}
