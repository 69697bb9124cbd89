/**
 * Installs a model package from a URL into a store: manifest first, then each shard streamed and verified
 * (sha256) before it is stored, then the tokenizer, and the manifest committed last.
 *
 * Resumable: a shard already stored whose bytes hash to the manifest's sha256 is not downloaded again, so an
 * install cut off by a dropped connection or an AbortSignal continues where it stopped. Until the commit the model
 * is not installed (list() and getManifest() do not show it). Permanent failures (a missing file, a shard corrupt
 * twice) discard what was stored; interruptions keep verified shards for the next attempt.
 */
import { DownloadError, LlamaWebGpuError, ShardIntegrityError, StorageQuotaError } from '../errors.ts';
import type { Manifest } from '../formats/manifest.ts';
import { checkFileName, checkModelId, modelIdFrom, parseManifest } from './package-check.ts';
import { packageBytes, type InstalledModel, type ModelStore } from './store.ts';

export interface InstallProgress {
  phase: 'manifest' | 'download' | 'verify' | 'done';
  file?: string;
  /** Bytes of the package stored or downloaded so far (shards and tokenizer). */
  loadedBytes: number;
  totalBytes: number;
}

export interface InstallOptions {
  /** Model id in the store; default the URL's last path segment. */
  id?: string;
  onProgress?: (p: InstallProgress) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

export async function installFromUrl(store: ModelStore, baseUrl: string, options: InstallOptions = {}): Promise<InstalledModel> {
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const { signal, onProgress } = options;
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : baseUrl + '/', (globalThis as { location?: Location }).location?.href);
  const id = options.id ?? modelIdFrom(base.pathname.split('/').filter(Boolean).pop() ?? '');
  checkModelId(id);

  onProgress?.({ phase: 'manifest', loadedBytes: 0, totalBytes: 0 });
  const manifestUrl = new URL('manifest.json', base).href;
  const manifestBytes = await download(fetchImpl, manifestUrl, null, signal, () => {});
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes), manifestUrl);
  const totalBytes = packageBytes(manifest);

  const existing = await store.getManifest(id);
  if (existing && sameFiles(existing, manifest)) {
    const model = (await store.list()).find((m) => m.id === id);
    if (model) {
      onProgress?.({ phase: 'done', loadedBytes: totalBytes, totalBytes });
      return model;
    }
  }

  const files = [...manifest.shards, manifest.tokenizer];
  // File names come from the server; each becomes a path or key in the store.
  for (const f of files) checkFileName(id, f.file);
  const stored = await Promise.all(files.map((f) => store.fileSize(id, f.file)));
  const missingBytes = files.reduce((n, f, i) => n + (stored[i] === f.byteSize ? 0 : f.byteSize), 0);
  await checkQuota(id, missingBytes);

  const sink = store.sink(id);
  let loadedBytes = 0;
  try {
    for (let i = 0; i < files.length; i++) {
      signal?.throwIfAborted();
      const f = files[i];
      const isTokenizer = i === files.length - 1;
      if (stored[i] === f.byteSize) {
        onProgress?.({ phase: 'verify', file: f.file, loadedBytes, totalBytes });
        const bytes = isTokenizer ? await store.readFile(id, f.file) : await store.readShard(id, f.file);
        if ((await sha256Hex(bytes)) === f.sha256) {
          loadedBytes += f.byteSize;
          onProgress?.({ phase: 'verify', file: f.file, loadedBytes, totalBytes });
          continue;
        }
      }
      const url = new URL(f.file, base).href;
      let bytes: Uint8Array | null = null;
      let problem = '';
      // A corrupt transfer (wrong size or hash) is fetched once more before it counts as a bad package.
      for (let attempt = 0; attempt < 2 && !bytes; attempt++) {
        const got = await download(fetchImpl, url, f.byteSize, signal, (n) =>
          onProgress?.({ phase: 'download', file: f.file, loadedBytes: loadedBytes + n, totalBytes }),
        );
        onProgress?.({ phase: 'verify', file: f.file, loadedBytes: loadedBytes + got.byteLength, totalBytes });
        const sha = got.byteLength === f.byteSize ? await sha256Hex(got) : '';
        if (sha === f.sha256) bytes = got;
        else problem = sha ? `sha256 is ${sha}, the manifest says ${f.sha256}` : `${got.byteLength} bytes arrived, the manifest says ${f.byteSize}`;
      }
      if (!bytes) {
        throw new ShardIntegrityError(
          f.file,
          `downloaded twice from ${url} and corrupt both times (${problem}). The server's copy does not match its manifest.json; ` +
            'publish the package again (all files from one conversion), then retry the install.',
        );
      }
      signal?.throwIfAborted();
      if (isTokenizer) {
        await sink.writeFile(f.file, bytes);
      } else {
        const w = await sink.openShard(f.file);
        await w.write(bytes);
        await w.close();
      }
      loadedBytes += f.byteSize;
    }
    signal?.throwIfAborted();
    await sink.commit(manifest);
  } catch (e) {
    if (isQuotaExceeded(e)) {
      // The browser's real quota can be below what storage.estimate() reports (Chromium reports a fixed figure;
      // a private window keeps far less): the store refused a write. Nothing partial stays behind.
      await sink.abort().catch(() => {});
      throw new StorageQuotaError(
        `Installing model "${id}" ran out of browser storage after ${formatBytes(loadedBytes)} of ${formatBytes(totalBytes)} ` +
          `(${(e as Error).message}); what was stored is removed. Delete installed models you no longer need, free disk space, ` +
          'leave private browsing, or choose a smaller (more quantized) model.',
        missingBytes,
        loadedBytes,
      );
    }
    if (isPermanent(e)) await sink.abort().catch(() => {});
    throw e;
  }
  onProgress?.({ phase: 'done', loadedBytes: totalBytes, totalBytes });
  const model = (await store.list()).find((m) => m.id === id);
  if (!model) throw new LlamaWebGpuError('STORAGE', `model "${id}": committed but not listed by the store; check the storage backend.`);
  return model;
}

/** The storage backend refused a write for lack of space (IndexedDB's QuotaExceededError, or ENOSPC in Node). */
function isQuotaExceeded(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const { name, code, cause } = e as { name?: unknown; code?: unknown; cause?: unknown };
  return name === 'QuotaExceededError' || code === 'ENOSPC' || (cause !== e && isQuotaExceeded(cause));
}

/** Errors that a retry would not fix: the package itself is wrong or incomplete on the server. */
function isPermanent(e: unknown): boolean {
  if (e instanceof ShardIntegrityError) return true;
  if (e instanceof DownloadError) return e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429;
  return false;
}

function sameFiles(a: Manifest, b: Manifest): boolean {
  return (
    a.tokenizer.sha256 === b.tokenizer.sha256 &&
    a.shards.length === b.shards.length &&
    a.shards.every((s, i) => s.file === b.shards[i].file && s.sha256 === b.shards[i].sha256)
  );
}

async function checkQuota(id: string, neededBytes: number): Promise<void> {
  const storage = (globalThis as { navigator?: Navigator }).navigator?.storage;
  if (!storage) return;
  if (typeof storage.estimate === 'function') {
    const { quota, usage } = await storage.estimate();
    if (quota !== undefined) {
      const available = Math.max(0, quota - (usage ?? 0));
      if (neededBytes > available) {
        throw new StorageQuotaError(
          `Installing model "${id}" needs ${formatBytes(neededBytes)} of storage, but this browser allows only ${formatBytes(available)} more ` +
            `(quota ${formatBytes(quota)}, used ${formatBytes(usage ?? 0)}). Delete installed models you no longer need, free disk space, ` +
            'or choose a smaller (more quantized) model.',
          neededBytes,
          available,
        );
      }
    }
  }
  // Persistent storage keeps the browser from evicting gigabytes of weights under storage pressure.
  if (typeof storage.persist === 'function') await storage.persist().catch(() => false);
}

/**
 * GETs `url` and streams the body into one buffer, reporting bytes as they arrive. With `expected` the buffer is
 * allocated once at that size, and a body longer than that stops early (it cannot match).
 */
async function download(
  fetchImpl: typeof fetch,
  url: string,
  expected: number | null,
  signal: AbortSignal | undefined,
  onBytes: (n: number) => void,
): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetchImpl(url, { signal, cache: 'no-store' });
  } catch (cause) {
    signal?.throwIfAborted();
    throw new DownloadError(url, 0, `Could not download ${url}: ${(cause as Error).message}. Check the network and retry; the install resumes where it stopped.`, { cause });
  }
  if (!response.ok) {
    throw new DownloadError(
      url,
      response.status,
      `Could not download ${url}: HTTP ${response.status} ${response.statusText}. ` +
        (response.status === 404 ? 'The package on the server is incomplete or the URL is wrong; check the URL and that every file of the package was published.' : 'Retry later.'),
    );
  }
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  let buf = new Uint8Array(expected ?? 1 << 16);
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (n + value.byteLength > buf.byteLength) {
        if (expected !== null) {
          await reader.cancel();
          return new Uint8Array(n + value.byteLength); // longer than the manifest says: reported as corrupt
        }
        const grown = new Uint8Array(Math.max(buf.byteLength * 2, n + value.byteLength));
        grown.set(buf.subarray(0, n));
        buf = grown;
      }
      buf.set(value, n);
      n += value.byteLength;
      onBytes(n);
    }
  } catch (cause) {
    signal?.throwIfAborted();
    throw new DownloadError(url, 0, `The download of ${url} broke off after ${n} bytes: ${(cause as Error).message}. Retry; the install resumes where it stopped.`, { cause });
  }
  return n === buf.byteLength ? buf : buf.subarray(0, n);
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${n} bytes`;
}
