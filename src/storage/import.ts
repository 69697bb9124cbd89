/**
 * Imports a model from a URL into a store, converting it on this device: a model package (handed to
 * installFromUrl), a GGUF file, a llama2.c .bin with its tokenizer's URL, or a Hugging Face style folder
 * (config.json, model.safetensors or model.safetensors.index.json with its shards, tokenizer.model). A Hugging Face
 * repository page (https://huggingface.co/<org>/<repo>, /tree/<rev>, /blob/<rev>/<file>) is read through its
 * /resolve/ URLs.
 *
 * The checkpoint streams through HTTP Range requests (http-source.ts) into the package writer, so memory stays at a
 * few pieces plus the shard being written, whatever the model's size. Like installFromUrl it holds the store's lock
 * of the id, stages apart from an installed version, and commits the manifest last, after the store has checked
 * every file's sha256. Resumable: a journal beside the staged shards (import-progress.json) records each finished
 * shard's sha256 with the source files' sizes and validators and the options; an import of the same URL that finds
 * them unchanged checks each recorded shard's hash and skips its rows, so an interrupted import continues where it
 * stopped. Permanent failures (a bad checkpoint, a missing file) discard what was staged.
 */
import { ConvertOptionsError, DownloadError, InvalidOptionsError, ModelFormatError, StorageError } from '../errors.ts';
import type { Checkpoint } from '../formats/checkpoint.ts';
import { openFileSet } from '../formats/detect.ts';
import { sha256Hex } from '../formats/hash.ts';
import type { FileSet } from '../formats/hf-config.ts';
import { httpSource, type HttpSource, type HttpSourceOptions } from '../formats/http-source.ts';
import { hasQuantizedGgufTensors } from '../formats/keep.ts';
import type { QuantScheme } from '../formats/quant-plan.ts';
import { DEFAULT_SHARD_BYTES, MANIFEST_FORMAT, type ShardEntry } from '../formats/manifest.ts';
import { writePackage, type ConvertOptions, type ConvertProgress, type ShardResume } from '../formats/package-writer.ts';
import { readAll } from '../formats/source.ts';
import { installFromUrl } from './install.ts';
import { checkModelId } from './package-check.ts';
import { huggingFaceResolve, importModelId } from './url-id.ts';

export { huggingFaceResolve, importModelId };
import { releaseBytes } from './release.ts';
import type { StoreSink } from './sink.ts';
import type { InstalledModel, ModelStore } from './store.ts';

export interface ImportProgress {
  /** 'open': reading the checkpoint's headers; 'convert': weights streaming through the converter. */
  phase: 'open' | 'convert' | 'done';
  /** The tensor being converted. */
  tensor?: string;
  /** Elements converted so far (rows of shards reused from an interrupted import count as converted). */
  done: number;
  total: number;
  /** Bytes downloaded so far by this call. */
  downloadedBytes: number;
  /** Bytes of shards written so far. */
  packageBytes: number;
}

export interface ImportOptions {
  /** Weight encoding of the package; default as `llama-webgpu convert`: 'keep' for a GGUF with quantized tensors, else 'q4'. */
  quant?: ConvertOptions['quant'];
  /** With no `quant`: the encoding of a checkpoint that has no quantized GGUF tensors to keep; default 'q4'. */
  unquantized?: QuantScheme;
  /** Model id in the store; default from the file or folder name. */
  id?: string;
  /** The tokenizer's URL (tokenizer.bin or tokenizer.model), for a llama2.c .bin or to override a folder's. */
  tokenizer?: string;
  shardBytes?: number;
  /** The package's name (manifest.json); default the model id. */
  name?: string;
  onProgress?: (p: ImportProgress) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** Milliseconds a request may wait for its next bytes before it counts as stalled (default 30000). */
  idleTimeoutMs?: number;
}

/** The staged journal of an import: what it converts from, how, and the shards finished so far. */
const JOURNAL = 'import-progress.json';

interface Journal {
  source: string;
  shards: ShardEntry[];
}

const SAFE_FILE = /^[A-Za-z0-9._-]+$/;

export async function importFromUrl(store: ModelStore, url: string, options: ImportOptions = {}): Promise<InstalledModel> {
  const { signal } = options;
  const abs = huggingFaceResolve(new URL(url, (globalThis as { location?: Location }).location?.href));
  const open: HttpSourceOptions = { fetch: options.fetch, signal, idleTimeoutMs: options.idleTimeoutMs };
  let downloaded = 0;
  const counted: HttpSourceOptions = { ...open, onBytes: (n) => (downloaded += n) };
  const progress = (p: Omit<ImportProgress, 'downloadedBytes'>) => options.onProgress?.({ ...p, downloadedBytes: downloaded });
  progress({ phase: 'open', done: 0, total: 0, packageBytes: 0 });

  const file = abs.pathname.split('/').pop() ?? '';
  const isFolder = file === '' || file === 'manifest.json' || !/\.[A-Za-z0-9]+$/.test(file);
  if (isFolder) {
    const base = new URL(abs.href.replace(/manifest\.json$/, '').replace(/([^/])$/, '$1/'));
    if (await isModelPackage(base, options)) {
      return installFromUrl(store, base.href, {
        id: options.id,
        signal,
        fetch: options.fetch,
        idleTimeoutMs: options.idleTimeoutMs,
        // A package has nothing to convert: its bytes are the progress.
        onProgress: (p) =>
          options.onProgress?.({
            phase: p.phase === 'done' ? 'done' : 'convert',
            tensor: p.file,
            done: p.loadedBytes,
            total: p.totalBytes,
            downloadedBytes: p.loadedBytes,
            packageBytes: p.loadedBytes,
          }),
      });
    }
  }
  const label = isFolder ? (abs.pathname.split('/').filter(Boolean).pop() ?? 'model') : file;
  const id = options.id ?? importModelId(url);
  checkModelId(id);
  if (options.quant !== undefined && typeof options.quant !== 'string') throw new InvalidOptionsError('quant', 'must be a string such as "q4", "q8", "f16" or "f32"');

  return store.lock(
    id,
    async () => {
      const files = isFolder ? await openFolder(abs, counted, options.tokenizer !== undefined) : await openFile(abs, counted);
      const tokenizer = options.tokenizer ? await httpSource(new URL(options.tokenizer, abs).href, counted) : undefined;
      const ckpt = await openFileSet(files, label, tokenizer).catch(async (e) => {
        for (const f of [...files.values(), ...(tokenizer ? [tokenizer] : [])]) await f.close?.();
        throw e;
      });
      try {
        return await convertInto(store, id, ckpt, [...files.values(), ...(tokenizer ? [tokenizer] : [])] as HttpSource[], options, progress);
      } finally {
        await ckpt.close();
      }
    },
    signal,
  );
}

async function convertInto(
  store: ModelStore,
  id: string,
  ckpt: Checkpoint,
  sources: HttpSource[],
  options: ImportOptions,
  progress: (p: Omit<ImportProgress, 'downloadedBytes'>) => void,
): Promise<InstalledModel> {
  // A GGUF with quantized tensors keeps them as they are by default, as `convert` does.
  const quant = options.quant ?? (hasQuantizedGgufTensors(ckpt) ? 'keep' : (options.unquantized ?? 'q4'));
  const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  // What the journal's shards depend on: the exact source files and the conversion options.
  const source = JSON.stringify({ files: sources.map((s) => [s.url, s.size, s.validator]), quant, shardBytes, format: ckpt.format });
  const sink = store.sink(id);
  const journal = await readJournal(sink, source);
  const resume: ShardResume = {
    async reuse(index, file) {
      const entry = journal.shards[index];
      if (!entry || entry.file !== file || (await sink.stagedSize(file)) !== entry.byteSize) return null;
      const bytes = await sink.readStaged(file);
      const ok = (await sha256Hex(bytes)) === entry.sha256;
      releaseBytes(bytes);
      return ok ? entry : null;
    },
    async written(index, entry) {
      journal.shards[index] = entry;
      journal.shards.length = index + 1;
      await sink.writeFile(JOURNAL, new TextEncoder().encode(JSON.stringify(journal)));
    },
  };
  try {
    await writePackage(ckpt, sink, {
      quant,
      shardBytes,
      name: options.name ?? id,
      signal: options.signal,
      resume,
      onProgress: (p: ConvertProgress) => progress({ phase: 'convert', tensor: p.tensor, done: p.done, total: p.total, packageBytes: p.bytes }),
    });
  } catch (e) {
    if (isPermanent(e)) await sink.abort().catch(() => {});
    throw e;
  }
  const model = (await store.list()).find((m) => m.id === id);
  if (!model) throw new StorageError(id, 'committed but not listed by the store; check the storage backend.');
  progress({ phase: 'done', done: 1, total: 1, packageBytes: model.bytes });
  return model;
}

/** The staged journal when it belongs to this very source and options; otherwise an empty one. */
async function readJournal(sink: StoreSink, source: string): Promise<Journal> {
  if ((await sink.stagedSize(JOURNAL)) === null) return { source, shards: [] };
  try {
    const j = JSON.parse(new TextDecoder().decode(await sink.readStaged(JOURNAL))) as Journal;
    if (j.source === source && Array.isArray(j.shards)) return j;
  } catch {
    // An unreadable journal is a fresh start.
  }
  return { source, shards: [] };
}

/** Errors a retry would not fix: the checkpoint or the options are wrong, or a file is not on the server. */
function isPermanent(e: unknown): boolean {
  if (e instanceof ModelFormatError || e instanceof ConvertOptionsError || e instanceof InvalidOptionsError) return true;
  if (e instanceof DownloadError) return e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429;
  return false;
}

/** A folder URL holds a model package when its manifest.json is one. */
async function isModelPackage(base: URL, options: ImportOptions): Promise<boolean> {
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  let r: Response;
  try {
    r = await fetchImpl(new URL('manifest.json', base).href, { signal: options.signal, cache: 'no-store' });
  } catch (cause) {
    options.signal?.throwIfAborted();
    throw new DownloadError(base.href, 0, `Could not reach ${base.href}: ${(cause as Error).message}. Check the URL and the network.`, { cause });
  }
  if (!r.ok) {
    await r.body?.cancel().catch(() => {});
    return false;
  }
  const text = await r.text();
  try {
    return (JSON.parse(text) as { format?: unknown }).format === MANIFEST_FORMAT;
  } catch {
    return false;
  }
}

/** One checkpoint file: a GGUF, or a llama2.c .bin (its tokenizer comes from options.tokenizer). */
async function openFile(u: URL, options: HttpSourceOptions): Promise<FileSet> {
  const src = await httpSource(u.href, options);
  const files: FileSet = new Map([[src.name, src]]);
  // A safetensors file needs its folder's config.json and tokenizer.model.
  if (src.name.endsWith('.safetensors')) {
    for (const extra of ['config.json', 'tokenizer.model']) {
      const s = await optional(new URL(extra, u).href, options);
      if (s) files.set(extra, s);
    }
  }
  return files;
}

/** A Hugging Face style folder: config.json, the safetensors index and shards (or model.safetensors), tokenizer.model. */
async function openFolder(u: URL, options: HttpSourceOptions, haveTokenizer: boolean): Promise<FileSet> {
  const base = new URL(u.href.endsWith('/') ? u.href : u.href + '/');
  const files: FileSet = new Map();
  const config = await optional(new URL('config.json', base).href, options);
  if (!config) {
    throw new ModelFormatError(
      base.href,
      'has neither a model package (manifest.json) nor a Hugging Face checkpoint (config.json); give the URL of a .gguf file, of a llama2.c .bin with its tokenizer, or of a folder holding one of those',
      'url',
    );
  }
  files.set('config.json', config);
  const index = await optional(new URL('model.safetensors.index.json', base).href, options);
  if (index) {
    files.set(index.name, index);
    const map = (JSON.parse(new TextDecoder().decode(await readAll(index, 64 << 20))) as { weight_map?: Record<string, unknown> }).weight_map ?? {};
    for (const shard of new Set(Object.values(map))) {
      if (typeof shard !== 'string' || !SAFE_FILE.test(shard)) {
        throw new ModelFormatError('model.safetensors.index.json', `lists shard ${JSON.stringify(shard)}, which is not a file name in the folder`, 'weight_map');
      }
      files.set(shard, await httpSource(new URL(shard, base).href, options));
    }
  } else {
    const single = await optional(new URL('model.safetensors', base).href, options);
    if (!single) throw new ModelFormatError(base.href, 'has config.json but neither model.safetensors nor model.safetensors.index.json', 'model.safetensors');
    files.set(single.name, single);
  }
  if (!haveTokenizer) {
    const tok = await optional(new URL('tokenizer.model', base).href, options);
    if (tok) files.set(tok.name, tok);
  }
  return files;
}

/** The file, or null when the server says it is not there (404). */
async function optional(url: string, options: HttpSourceOptions): Promise<HttpSource | null> {
  try {
    return await httpSource(url, options);
  } catch (e) {
    if (e instanceof DownloadError && e.status === 404) return null;
    throw e;
  }
}
