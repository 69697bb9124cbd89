/**
 * Installs a model package from a URL into a store: manifest first, then each shard streamed and verified
 * (sha256) before it is staged, then the tokenizer, and the manifest committed last, all while holding the store's
 * lock of the id, so two installs of one id (from two tabs, or two URLs) run one after the other.
 *
 * The installed version of the id stays usable until the commit replaces it: a failed or abandoned update leaves
 * it as it was. Resumable: a staged file whose bytes hash to the manifest's sha256 is not downloaded again, and
 * neither is a file of the installed version with the same name and sha256. A download that breaks off or stalls
 * (no byte for idleTimeoutMs) continues with a Range request from the byte where it stopped. Permanent failures
 * (a missing file, a shard corrupt twice) discard what was staged; interruptions keep verified files for the next
 * attempt.
 */
import { DownloadError, ShardIntegrityError, StorageError, StorageQuotaError } from '../errors.ts';
import { sha256Hex } from '../formats/hash.ts';
import type { Manifest } from '../formats/manifest.ts';
import { checkFileName, checkModelId, modelIdFrom, parseManifest } from './package-check.ts';
import { releaseBytes } from './release.ts';
import { packageBytes, type InstalledModel, type ModelStore } from './store.ts';

export { sha256Hex } from '../formats/hash.ts';

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
  /**
   * Milliseconds a download may wait for its next bytes before it counts as stalled (default 30000). A stalled or
   * broken-off download resumes from where it stopped; after three attempts in a row that bring no new byte, the
   * install fails with a DownloadError.
   */
  idleTimeoutMs?: number;
}

const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** Attempts in a row that bring no new byte before a download gives up. */
const FRUITLESS_ATTEMPTS = 3;

export async function installFromUrl(store: ModelStore, baseUrl: string, options: InstallOptions = {}): Promise<InstalledModel> {
  const { signal, onProgress } = options;
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : baseUrl + '/', (globalThis as { location?: Location }).location?.href);
  const id = options.id ?? modelIdFrom(base.pathname.split('/').filter(Boolean).pop() ?? '');
  checkModelId(id);
  const get: Fetcher = {
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    signal,
    idleMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
  };

  onProgress?.({ phase: 'manifest', loadedBytes: 0, totalBytes: 0 });
  const manifestUrl = new URL('manifest.json', base).href;
  const manifest = parseManifest(new TextDecoder().decode(await download(get, manifestUrl, null, () => {})), manifestUrl);
  const totalBytes = packageBytes(manifest);
  const files = [...manifest.shards, manifest.tokenizer];
  // File names come from the server; each becomes a path or key in the store.
  for (const f of files) checkFileName(id, f.file);

  const installed = async () => {
    const model = (await store.list()).find((m) => m.id === id);
    if (!model) throw new StorageError(id, 'committed but not listed by the store; check the storage backend.');
    onProgress?.({ phase: 'done', loadedBytes: totalBytes, totalBytes });
    return model;
  };

  return store.lock(
    id,
    async () => {
      const existing = await store.getManifest(id);
      if (existing && sameFiles(existing, manifest)) return installed();
      // Files of the installed version that the new one keeps (same name and sha256) are copied, not downloaded.
      const kept = new Set([existing?.tokenizer, ...(existing?.shards ?? [])].map((f) => f && `${f.file}:${f.sha256}`));

      const sink = store.sink(id);
      const stored = await Promise.all(files.map((f) => sink.stagedSize(f.file)));
      const missingBytes = files.reduce((n, f, i) => n + (stored[i] === f.byteSize ? 0 : f.byteSize), 0);
      await checkQuota(id, missingBytes);

      let loadedBytes = 0;
      try {
        for (let i = 0; i < files.length; i++) {
          signal?.throwIfAborted();
          const f = files[i];
          const isTokenizer = i === files.length - 1;
          const progress = (phase: InstallProgress['phase'], n = 0) => onProgress?.({ phase, file: f.file, loadedBytes: loadedBytes + n, totalBytes });
          if (stored[i] === f.byteSize) {
            progress('verify');
            if (await hashes(await sink.readStaged(f.file), f.sha256)) {
              loadedBytes += f.byteSize;
              progress('verify');
              continue;
            }
          }
          let bytes: Uint8Array | null = null;
          if (kept.has(`${f.file}:${f.sha256}`)) {
            progress('verify');
            const copy = isTokenizer ? await store.readFile(id, f.file) : await store.readShard(id, f.file);
            if (copy.byteLength === f.byteSize && (await sha256Hex(copy)) === f.sha256) bytes = copy;
          }
          const url = new URL(f.file, base).href;
          let problem = '';
          // A corrupt transfer (wrong size or hash) is fetched once more before it counts as a bad package.
          for (let attempt = 0; attempt < 2 && !bytes; attempt++) {
            const got = await download(get, url, f.byteSize, (n) => progress('download', n));
            progress('verify', got.byteLength);
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
          releaseBytes(bytes);
          loadedBytes += f.byteSize;
        }
        signal?.throwIfAborted();
        await sink.commit(manifest);
      } catch (e) {
        if (isQuotaExceeded(e)) {
          // The browser's real quota can be below what storage.estimate() reports (Chromium reports a fixed figure;
          // a private window keeps far less): the store refused a write. Nothing staged stays behind.
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
      return installed();
    },
    signal,
  );
}

async function hashes(bytes: Uint8Array, sha256: string): Promise<boolean> {
  const ok = (await sha256Hex(bytes)) === sha256;
  releaseBytes(bytes);
  return ok;
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

interface Fetcher {
  fetch: typeof fetch;
  signal: AbortSignal | undefined;
  idleMs: number;
}

/**
 * GETs `url` into one buffer, reporting bytes as they arrive. With `expected` (the manifest's size) the buffer is
 * allocated once at that size; a body longer than that stops early (it cannot match), and a download that breaks
 * off or stalls continues with `Range: bytes=<received>-` (from byte 0 again when the server ignores Range).
 */
async function download(get: Fetcher, url: string, expected: number | null, onBytes: (n: number) => void): Promise<Uint8Array> {
  const buf = { bytes: new Uint8Array(expected ?? 1 << 16), n: 0 };
  let fruitless = 0;
  for (;;) {
    const before = buf.n;
    try {
      const tooLong = await fetchInto(get, url, buf, expected, onBytes);
      return tooLong ?? (buf.n === buf.bytes.byteLength ? buf.bytes : buf.bytes.subarray(0, buf.n));
    } catch (e) {
      get.signal?.throwIfAborted();
      // Only a file of known size resumes, and only after an interruption (status 0), not an HTTP error.
      if (expected === null || !(e instanceof DownloadError) || e.status !== 0) throw e;
      fruitless = buf.n > before ? 0 : fruitless + 1;
      if (fruitless >= FRUITLESS_ATTEMPTS) throw e;
      await new Promise((r) => setTimeout(r, 250 * fruitless));
    }
  }
}

/**
 * One request of `download`, appending to `buf` from `buf.n`. Returns a body longer than `expected` (to be reported
 * as corrupt), otherwise null once the body ended. Throws DownloadError with status 0 when the body breaks off or
 * stalls.
 */
async function fetchInto(
  get: Fetcher,
  url: string,
  buf: { bytes: Uint8Array; n: number },
  expected: number | null,
  onBytes: (n: number) => void,
): Promise<Uint8Array | null> {
  const from = buf.n;
  const retry = 'Check the network and retry; the install resumes where it stopped.';
  let response: Response;
  try {
    response = await get.fetch(url, { signal: get.signal, cache: 'no-store', headers: from > 0 ? { Range: `bytes=${from}-` } : {} });
  } catch (cause) {
    get.signal?.throwIfAborted();
    throw new DownloadError(url, 0, `Could not download ${url}: ${(cause as Error).message}. ${retry}`, { cause });
  }
  if (!response.ok) {
    throw new DownloadError(
      url,
      response.status,
      `Could not download ${url}: HTTP ${response.status} ${response.statusText}. ` +
        (response.status === 404 ? 'The package on the server is incomplete or the URL is wrong; check the URL and that every file of the package was published.' : 'Retry later.'),
    );
  }
  // A 206 whose Content-Range starts at `from` continues the file; anything else is the whole file again.
  if (!(response.status === 206 && response.headers.get('content-range')?.startsWith(`bytes ${from}-`))) buf.n = 0;
  if (!response.body) {
    const all = new Uint8Array(await response.arrayBuffer());
    if (buf.n + all.byteLength > buf.bytes.byteLength) return new Uint8Array(buf.n + all.byteLength);
    buf.bytes.set(all, buf.n);
    buf.n += all.byteLength;
    return null;
  }
  const reader = response.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    for (;;) {
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no data arrived for ${get.idleMs / 1000} s`)), get.idleMs);
      });
      const { done, value } = await Promise.race([reader.read(), stalled]);
      clearTimeout(timer);
      if (done) break;
      if (buf.n + value.byteLength > buf.bytes.byteLength) {
        if (expected !== null) {
          await reader.cancel().catch(() => {});
          return new Uint8Array(buf.n + value.byteLength); // longer than the manifest says: reported as corrupt
        }
        const grown = new Uint8Array(Math.max(buf.bytes.byteLength * 2, buf.n + value.byteLength));
        grown.set(buf.bytes.subarray(0, buf.n));
        buf.bytes = grown;
      }
      buf.bytes.set(value, buf.n);
      buf.n += value.byteLength;
      onBytes(buf.n);
    }
  } catch (cause) {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
    get.signal?.throwIfAborted();
    throw new DownloadError(url, 0, `The download of ${url} broke off after ${buf.n} bytes: ${(cause as Error).message}. ${retry}`, { cause });
  }
  return null;
}

function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${n} bytes`;
}
