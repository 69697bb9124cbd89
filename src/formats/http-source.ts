/**
 * A file on a web server as a ByteSource, read with HTTP Range requests: checkpoint readers stream a remote GGUF or
 * safetensors file as they stream a local one, and the whole file is never in memory.
 *
 * The file is fetched in chunks (up to 4 MiB, one Range request each) kept in a small cache; every read also starts
 * fetching the four chunks after it, since converters read a checkpoint mostly front to back: the network works
 * while the converter encodes what it read. A request that breaks off or stalls continues from the byte where it
 * stopped. Every response must carry the validator (ETag or Last-Modified) of the first, so a file replaced on the
 * server while it is read fails instead of mixing two versions.
 */
import { DownloadError } from '../errors.ts';
import { checkRange, type ByteSource } from './source.ts';

export interface HttpSourceOptions {
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Called with the byte count of each response body as it arrives (for progress). */
  onBytes?: (n: number) => void;
  /** Milliseconds without a new byte before a request counts as stalled (default 30000). */
  idleTimeoutMs?: number;
}

export interface HttpSource extends ByteSource {
  readonly url: string;
  /** The server's ETag or Last-Modified, or '' when it sends neither. */
  readonly validator: string;
  close(): Promise<void>;
}

/** The first request's range: enough for most headers. */
const PROBE = 64 << 10;
/** The file is fetched in chunks of 1/16 of its size, between 64 KiB and 4 MiB, each one Range request. */
const MIN_CHUNK = 64 << 10;
const MAX_CHUNK = 4 << 20;
/** Chunks fetched past the end of each read, while the converter works on what it read (up to 16 MiB). */
const AHEAD = 4;
/** The chunk cache holds at least this much (a small file stays whole), and always a read plus its read-ahead. */
const CACHE_BYTES = 16 << 20;
/** A server that ignores Range requests is used for files up to this size, read whole. */
const WHOLE_FILE_LIMIT = 16 << 20;
/** Requests in a row that bring no new byte before a read gives up. */
const FRUITLESS_ATTEMPTS = 3;

const RETRY = 'Check the network and retry; the import resumes where it stopped.';

/**
 * Opens `url`: one Range request for its first block gives the size and validator. A 404 or other HTTP error is a
 * DownloadError with that status; a server that ignores Range requests is one too (status 200), except for a file
 * that fits in one block.
 */
export async function httpSource(url: string, options: HttpSourceOptions = {}): Promise<HttpSource> {
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const { signal, onBytes } = options;
  const idleMs = options.idleTimeoutMs ?? 30_000;
  const name = decodeURIComponent(new URL(url).pathname.split('/').pop() || url);

  async function request(start: number, end: number): Promise<Response> {
    let response: Response;
    try {
      response = await fetchImpl(url, { signal, cache: 'no-store', headers: { Range: `bytes=${start}-${end - 1}` } });
    } catch (cause) {
      signal?.throwIfAborted();
      throw new DownloadError(url, 0, `Could not download ${url}: ${(cause as Error).message}. ${RETRY}`, { cause });
    }
    if (!response.ok && response.status !== 416) {
      await response.body?.cancel().catch(() => {});
      throw new DownloadError(
        url,
        response.status,
        `Could not download ${url}: HTTP ${response.status} ${response.statusText}. ` +
          (response.status === 404 ? 'Check the URL; the file is not on the server.' : response.status === 401 || response.status === 403 ? 'The server refuses access; use a public URL.' : 'Retry later.'),
      );
    }
    return response;
  }

  const first = await request(0, PROBE);
  const validator = first.headers.get('etag') ?? first.headers.get('last-modified') ?? '';
  let size: number;
  let head: Uint8Array;
  if (first.status === 416) {
    size = 0;
    head = new Uint8Array(0);
  } else if (first.status === 206) {
    size = totalSize(first.headers.get('content-range')) ?? (await headSize());
    head = new Uint8Array(Math.min(PROBE, size));
    const at = { n: 0 };
    try {
      await readBody(first, head, at);
    } catch (e) {
      if (!(e instanceof DownloadError) || e.status !== 0) throw e;
      head.set(await fetchRange(at.n, head.byteLength - at.n), at.n);
    }
  } else {
    // 200: the server sent the whole file. Fine for a small file; a checkpoint streams with Range requests.
    const length = Number(first.headers.get('content-length') ?? NaN);
    if (!(length <= WHOLE_FILE_LIMIT)) {
      await first.body?.cancel().catch(() => {});
      throw new DownloadError(
        url,
        first.status,
        `The server of ${url} ignores HTTP Range requests, which importing streams the file with. Serve it from a server ` +
          'that answers them (any static file server, Hugging Face, a CDN), or download it and convert the file.',
      );
    }
    head = new Uint8Array(await first.arrayBuffer());
    size = head.byteLength;
    onBytes?.(size);
  }

  /** The total size of a 206 whose Content-Range a cross-origin server did not expose: a HEAD's Content-Length. */
  async function headSize(): Promise<number> {
    const r = await fetchImpl(url, { method: 'HEAD', signal, cache: 'no-store' });
    const n = Number(r.headers.get('content-length') ?? NaN);
    if (!r.ok || !Number.isSafeInteger(n)) {
      throw new DownloadError(url, r.status, `The server of ${url} does not say how large the file is (Content-Range or Content-Length); it cannot be imported from there.`);
    }
    return n;
  }

  /**
   * Streams a body into `out` from `at.n` until `out` is full, advancing `at.n` as bytes arrive, so a caller can
   * continue from there when the body breaks off or stalls (a DownloadError with status 0).
   */
  async function readBody(response: Response, out: Uint8Array, at: { n: number }): Promise<Uint8Array> {
    const length = out.byteLength;
    if (!response.body) {
      const all = new Uint8Array(await response.arrayBuffer());
      const take = Math.min(all.byteLength, length - at.n);
      out.set(all.subarray(0, take), at.n);
      at.n += take;
      onBytes?.(take);
    } else {
      await streamBody(response.body, out, at);
    }
    if (at.n < length) throw new DownloadError(url, 0, `The download of ${url} ended after ${at.n} of ${length} bytes. ${RETRY}`);
    return out;
  }

  async function streamBody(body: ReadableStream<Uint8Array>, out: Uint8Array, at: { n: number }): Promise<void> {
    const length = out.byteLength;
    const reader = body.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (at.n < length) {
        const stalled = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no data arrived for ${idleMs / 1000} s`)), idleMs);
        });
        const { done, value } = await Promise.race([reader.read(), stalled]);
        clearTimeout(timer);
        if (done) break;
        const take = Math.min(value.byteLength, length - at.n);
        out.set(take === value.byteLength ? value : value.subarray(0, take), at.n);
        at.n += take;
        onBytes?.(take);
      }
      if (at.n >= length) await reader.cancel().catch(() => {});
    } catch (cause) {
      clearTimeout(timer);
      reader.cancel().catch(() => {});
      signal?.throwIfAborted();
      throw new DownloadError(url, 0, `The download of ${url} broke off after ${at.n} of ${length} bytes: ${(cause as Error).message}. ${RETRY}`, { cause });
    }
  }

  /** Bytes [offset, offset + length), continuing a request that broke off from the byte where it stopped. */
  async function fetchRange(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const at = { n: 0 };
    let fruitless = 0;
    while (at.n < length) {
      const start = offset + at.n;
      const before = at.n;
      try {
        const response = await request(start, offset + length);
        const range = response.headers.get('content-range');
        const v = response.headers.get('etag') ?? response.headers.get('last-modified') ?? '';
        if (response.status !== 206 || (range !== null && !range.startsWith(`bytes ${start}-`)) || v !== validator) {
          await response.body?.cancel().catch(() => {});
          throw new DownloadError(
            url,
            response.status,
            v !== validator
              ? `${url} changed on the server while it was imported (validator ${validator || 'none'}, now ${v || 'none'}); import it again.`
              : `The server of ${url} answered a Range request for bytes ${start}- with ${range ?? `HTTP ${response.status}`}; it cannot be imported from there.`,
          );
        }
        await readBody(response, out, at);
      } catch (e) {
        signal?.throwIfAborted();
        if (!(e instanceof DownloadError) || e.status !== 0) throw e;
        fruitless = at.n > before ? 0 : fruitless + 1;
        if (fruitless >= FRUITLESS_ATTEMPTS) throw e;
        await new Promise((r) => setTimeout(r, 250 * fruitless));
      }
    }
    return out;
  }

  const CHUNK = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, 2 ** Math.ceil(Math.log2(Math.max(1, size / 16)))));
  /** Chunk index -> its bytes, least recently used first. */
  const chunks = new Map<number, Promise<Uint8Array>>();
  function chunk(index: number): Promise<Uint8Array> {
    let c = chunks.get(index);
    if (c) {
      chunks.delete(index); // re-inserted below as the most recently used
    } else {
      const start = index * CHUNK;
      c = fetchRange(start, Math.min(CHUNK, size - start));
      c.catch(() => chunks.delete(index)); // a failed fetch is reported to its reader and tried again on the next read
    }
    chunks.set(index, c);
    return c;
  }

  return {
    name,
    size,
    url,
    validator,
    async read(offset, length) {
      checkRange({ name, size }, offset, length);
      if (offset + length <= head.byteLength) return head.slice(offset, offset + length);
      const first = Math.floor(offset / CHUNK);
      const last = Math.floor((offset + length - 1) / CHUNK);
      const lastAhead = Math.min(last + AHEAD, Math.ceil(size / CHUNK) - 1);
      const wanted: Promise<Uint8Array>[] = [];
      for (let i = first; i <= lastAhead; i++) {
        const c = chunk(i);
        if (i <= last) wanted.push(c);
      }
      const keep = Math.max(Math.floor(CACHE_BYTES / CHUNK), lastAhead - first + 1);
      while (chunks.size > keep) chunks.delete(chunks.keys().next().value!);
      const parts = await Promise.all(wanted);
      if (first === last) return parts[0].slice(offset - first * CHUNK, offset - first * CHUNK + length);
      const out = new Uint8Array(length);
      parts.forEach((c, k) => {
        const i = first + k;
        const from = Math.max(offset, i * CHUNK);
        const to = Math.min(offset + length, (i + 1) * CHUNK);
        out.set(c.subarray(from - i * CHUNK, to - i * CHUNK), from - offset);
      });
      return out;
    },
    async close() {
      chunks.clear();
    },
  };
}

function totalSize(contentRange: string | null): number | null {
  const m = contentRange ? /\/(\d+)\s*$/.exec(contentRange) : null;
  return m ? Number(m[1]) : null;
}
