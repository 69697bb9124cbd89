/** installFromUrl against a package served by a local HTTP server that can corrupt, drop and withhold files. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DownloadError, PackageVersionError, ShardIntegrityError, StorageError, StorageQuotaError } from '../../src/errors.ts';
import { MANIFEST_VERSION } from '../../src/formats/manifest.ts';
import type { Manifest } from '../../src/formats/manifest.ts';
import { installFromUrl, sha256Hex, type InstallProgress } from '../../src/storage/install.ts';
import type { ModelStore } from '../../src/storage/store.ts';
import { buildPackage, tinyConfig, type BuiltPackage } from '../helpers/package.ts';
import { STORE_KINDS, type TestStore } from './stores.ts';

/** Serves `files` under /pkg/; each rule applies to the next `times` requests of its file. */
class PackageServer {
  files = new Map<string, Uint8Array>();
  requests: string[] = [];
  corrupt = new Map<string, number>();
  dropAfterHalf = new Map<string, number>();
  /** Sends the headers and this many bytes, then nothing more (the connection stays open). */
  stallAfter = new Map<string, { bytes: number; times: number }>();
  unavailable = new Map<string, number>();
  missing = new Set<string>();
  /** "<file> <Range header>" of every request that had one. */
  ranges: string[] = [];
  private server = http.createServer((req, res) => this.handle(req, res));
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/pkg/`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private take(rule: Map<string, number>, name: string): boolean {
    const n = rule.get(name) ?? 0;
    if (n > 0) rule.set(name, n - 1);
    return n > 0;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const name = decodeURIComponent((req.url ?? '').replace(/^\/pkg\//, ''));
    this.requests.push(name);
    const body = this.files.get(name);
    if (!body || this.missing.has(name)) {
      res.writeHead(404).end('not found');
      return;
    }
    if (this.take(this.unavailable, name)) {
      res.writeHead(503).end('busy');
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (req.headers.range) this.ranges.push(`${name} ${req.headers.range}`);
    const stall = this.stallAfter.get(name);
    if (stall && stall.times > 0) {
      stall.times--;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.byteLength });
      res.write(body.subarray(0, stall.bytes));
      return;
    }
    if (range) {
      const from = Number(range[1]);
      res.writeHead(206, { 'content-range': `bytes ${from}-${body.byteLength - 1}/${body.byteLength}`, 'content-length': body.byteLength - from });
      res.end(body.subarray(from));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.byteLength });
    if (this.take(this.dropAfterHalf, name)) {
      res.write(body.subarray(0, body.byteLength >> 1), () => res.socket?.destroy());
      return;
    }
    if (this.take(this.corrupt, name)) {
      const bad = body.slice();
      bad[bad.byteLength >> 1] ^= 0xff;
      res.end(bad);
      return;
    }
    res.end(body);
  }
}

let pkg: BuiltPackage;
/** Another version of the package: the same file names and tokenizer, other shard bytes. */
let pkg2: BuiltPackage;
const server = new PackageServer();
const server2 = new PackageServer();

beforeAll(async () => {
  pkg = await buildPackage(tinyConfig(), { dtype: 'q4', shardBytes: 16 * 1024, name: 'Tiny Q4' });
  pkg2 = await buildPackage(tinyConfig(), { dtype: 'q4', shardBytes: 16 * 1024, name: 'Tiny Q4 v2', seed: 99 });
  await Promise.all([server.start(), server2.start()]);
});
afterAll(() => Promise.all([server.stop(), server2.stop()]));

function serve2(): void {
  server2.files = new Map(pkg2.files);
  server2.files.set('manifest.json', new TextEncoder().encode(JSON.stringify(pkg2.manifest)));
  server2.requests = [];
  server2.missing.clear();
  server2.stallAfter.clear();
}

/** Every installed file of `id` hashes to the installed manifest's sha256. */
async function expectConsistent(store: ModelStore, id: string): Promise<Manifest> {
  const m = (await store.getManifest(id))!;
  expect(m).not.toBeNull();
  for (const s of m.shards) expect(await sha256Hex(await store.readShard(id, s.file)), s.file).toBe(s.sha256);
  expect(await sha256Hex(await store.readFile(id, m.tokenizer.file))).toBe(m.tokenizer.sha256);
  return m;
}

function serve(manifest: unknown = pkg.manifest): void {
  server.files = new Map(pkg.files);
  server.files.set('manifest.json', new TextEncoder().encode(JSON.stringify(manifest)));
  server.requests = [];
  server.corrupt.clear();
  server.dropAfterHalf.clear();
  server.stallAfter.clear();
  server.unavailable.clear();
  server.missing.clear();
  server.ranges = [];
}

const shardRequests = () => server.requests.filter((r) => r.startsWith('shard-'));

describe.each(STORE_KINDS)('installFromUrl into the %s store', (_kind, make) => {
  let t: TestStore;
  beforeEach(async () => {
    t = await make();
    serve();
  });
  afterEach(async () => {
    vi.unstubAllGlobals();
    await t.cleanup();
  });

  it('installs every file with progress, then a second install downloads nothing', async () => {
    const shards = pkg.manifest.shards;
    expect(shards.length).toBeGreaterThanOrEqual(4);
    const progress: InstallProgress[] = [];
    const model = await installFromUrl(t.store, server.url, { onProgress: (p) => progress.push(p) });
    expect(model.id).toBe('pkg');
    expect(model.name).toBe('Tiny Q4');
    expect(model.manifest).toEqual(pkg.manifest);
    expect(shardRequests()).toEqual(shards.map((s) => s.file));
    for (const s of shards) expect(await t.store.readShard('pkg', s.file)).toEqual(pkg.files.get(s.file));
    expect(await t.store.readFile('pkg', 'tokenizer.model')).toEqual(pkg.files.get('tokenizer.model'));

    const total = model.bytes;
    expect(progress[0].phase).toBe('manifest');
    expect(progress.at(-1)).toEqual({ phase: 'done', loadedBytes: total, totalBytes: total });
    const downloads = progress.filter((p) => p.phase === 'download');
    expect(new Set(downloads.map((p) => p.file))).toEqual(new Set([...shards.map((s) => s.file), 'tokenizer.model']));
    for (let i = 1; i < downloads.length; i++) expect(downloads[i].loadedBytes).toBeGreaterThanOrEqual(downloads[i - 1].loadedBytes);
    expect(progress.some((p) => p.phase === 'verify')).toBe(true);

    server.requests = [];
    await installFromUrl(t.store, server.url);
    expect(server.requests).toEqual(['manifest.json']);
  });

  it('fetches a corrupted shard again, and reports a shard corrupt twice by name with nothing installed', async () => {
    server.corrupt.set('shard-00001.bin', 1);
    await installFromUrl(t.store, server.url, { id: 'once' });
    expect(shardRequests().filter((r) => r === 'shard-00001.bin')).toHaveLength(2);
    expect(await t.store.readShard('once', 'shard-00001.bin')).toEqual(pkg.files.get('shard-00001.bin'));

    serve();
    server.corrupt.set('shard-00002.bin', 2);
    const err = await installFromUrl(t.store, server.url, { id: 'twice' }).catch((e) => e);
    expect(err).toBeInstanceOf(ShardIntegrityError);
    expect(err.message).toMatch(/^shard-00002.bin: downloaded twice .* corrupt both times \(sha256 is [0-9a-f]{64}, the manifest says/);
    expect(shardRequests().filter((r) => r === 'shard-00002.bin')).toHaveLength(2);
    expect((await t.store.list()).map((m) => m.id)).toEqual(['once']);
    expect(await t.store.sink('twice').stagedSize('shard-00000.bin')).toBeNull(); // discarded, not left half-installed
  });

  it('a dropped connection continues within the shard with a Range request', async () => {
    server.dropAfterHalf.set('shard-00002.bin', 1);
    const model = await installFromUrl(t.store, server.url);
    const half = pkg.manifest.shards[2].byteSize >> 1;
    expect(server.ranges).toEqual([`shard-00002.bin bytes=${half}-`]);
    expect(model.manifest).toEqual(pkg.manifest);
    for (const s of pkg.manifest.shards) expect(await t.store.readShard('pkg', s.file)).toEqual(pkg.files.get(s.file));
  });

  it('a stalled download (headers and 100 bytes, then silence) times out and resumes from byte 100', async () => {
    server.stallAfter.set('shard-00001.bin', { bytes: 100, times: 1 });
    // Long enough that no healthy read on a loaded machine times out; the stall ends only by timing out.
    const model = await installFromUrl(t.store, server.url, { idleTimeoutMs: 1500 });
    expect(server.ranges).toEqual(['shard-00001.bin bytes=100-']);
    expect(await t.store.readShard('pkg', 'shard-00001.bin')).toEqual(pkg.files.get('shard-00001.bin'));
    expect(model.manifest).toEqual(pkg.manifest);
  });

  it('a download that stays silent ends in a DownloadError naming the URL, keeping the shards staged before it', async () => {
    server.stallAfter.set('shard-00002.bin', { bytes: 0, times: 99 });
    const err = await installFromUrl(t.store, server.url, { idleTimeoutMs: 200 }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.status).toBe(0);
    expect(err.message).toMatch(/\/pkg\/shard-00002.bin broke off after 0 bytes: no data arrived for 0.2 s.*resumes where it stopped/);
    expect(shardRequests().filter((r) => r === 'shard-00002.bin')).toHaveLength(3);
    expect(await t.store.list()).toEqual([]);
    expect(await t.store.sink('pkg').stagedSize('shard-00001.bin')).toBe(pkg.manifest.shards[1].byteSize);
  });

  it('resumes after a failed attempt without fetching verified shards again', async () => {
    server.unavailable.set('shard-00002.bin', 1);
    const err = await installFromUrl(t.store, server.url).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.message).toMatch(/shard-00002.bin: HTTP 503.*Retry later/);
    expect(await t.store.list()).toEqual([]);
    expect(await t.store.getManifest('pkg')).toBeNull();

    server.requests = [];
    const model = await installFromUrl(t.store, server.url);
    expect(shardRequests()).toEqual(pkg.manifest.shards.slice(2).map((s) => s.file));
    expect(model.manifest).toEqual(pkg.manifest);
    for (const s of pkg.manifest.shards) expect(await t.store.readShard('pkg', s.file)).toEqual(pkg.files.get(s.file));
  });

  it('an AbortSignal stops the install; the next install resumes', async () => {
    const controller = new AbortController();
    const err = await installFromUrl(t.store, server.url, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'download' && p.file === 'shard-00003.bin') controller.abort();
      },
    }).catch((e) => e);
    expect(err.name).toBe('AbortError');
    expect(await t.store.list()).toEqual([]);
    server.requests = [];
    await installFromUrl(t.store, server.url);
    expect(shardRequests()[0]).toBe('shard-00003.bin');
    expect(await t.store.getManifest('pkg')).toEqual(pkg.manifest);
  });

  it('a stored shard whose bytes no longer match is downloaded again', async () => {
    const sink = t.store.sink('pkg');
    const w = await sink.openShard('shard-00000.bin');
    await w.write(new Uint8Array(pkg.manifest.shards[0].byteSize)); // right size, wrong bytes
    await w.close();
    await installFromUrl(t.store, server.url);
    expect(shardRequests()).toContain('shard-00000.bin');
    expect(await t.store.readShard('pkg', 'shard-00000.bin')).toEqual(pkg.files.get('shard-00000.bin'));
  });

  it('a missing shard (404) fails naming the URL and leaves nothing installed', async () => {
    server.missing.add('shard-00002.bin');
    const err = await installFromUrl(t.store, server.url).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/\/pkg\/shard-00002.bin: HTTP 404.*every file of the package was published/);
    expect(await t.store.list()).toEqual([]);
    expect(await t.store.sink('pkg').stagedSize('shard-00000.bin')).toBeNull();
  });

  it('a manifest of a newer format version, or of another format, says to upgrade before any download', async () => {
    serve({ ...pkg.manifest, formatVersion: MANIFEST_VERSION + 1 });
    const err = await installFromUrl(t.store, server.url).catch((e) => e);
    expect(err).toBeInstanceOf(PackageVersionError);
    expect(err.message).toMatch(/manifest.json: formatVersion 2 is newer .*Upgrade llama-webgpu/);
    serve({ ...pkg.manifest, format: 'something-else' });
    await expect(installFromUrl(t.store, server.url)).rejects.toThrow(/not a llama-webgpu model package/);
    expect(shardRequests()).toEqual([]);
    expect(await t.store.list()).toEqual([]);
  });

  it('refuses unsafe file names from the server and bad model ids before downloading', async () => {
    const evil = structuredClone(pkg.manifest);
    evil.tokenizer.file = '..';
    serve(evil);
    await expect(installFromUrl(t.store, server.url)).rejects.toThrow(/model "pkg": file name ".." is not allowed/);
    await expect(installFromUrl(t.store, server.url, { id: '../x' })).rejects.toThrow(StorageError);
    expect(server.requests).toEqual(['manifest.json']);
    expect(await t.store.list()).toEqual([]);
  });

  it('checks the storage quota before downloading and asks for persistent storage', async () => {
    const persist = vi.fn(async () => true);
    const total = [...pkg.files.values()].reduce((n, b) => n + b.byteLength, 0);
    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ quota: total + 1000, usage: 2000 }), persist } });
    const err = await installFromUrl(t.store, server.url).catch((e) => e);
    expect(err).toBeInstanceOf(StorageQuotaError);
    expect(err.neededBytes).toBe(total);
    expect(err.availableBytes).toBe(total - 1000);
    expect(err.message).toMatch(/needs .* of storage, but this browser allows only .* Delete installed models/);
    expect(shardRequests()).toEqual([]);
    expect(persist).not.toHaveBeenCalled();

    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ quota: total * 10, usage: 0 }), persist } });
    await installFromUrl(t.store, server.url);
    expect(persist).toHaveBeenCalledOnce();
    expect((await t.store.list()).map((m) => m.id)).toEqual(['pkg']);
  });

  it('turns a write the store refuses for space into StorageQuotaError and removes what was stored', async () => {
    // Browsers may report more quota than they grant (Chromium's estimate() is a fixed figure), so the store is
    // what finds out: here it refuses the second shard as IndexedDB does, with a QuotaExceededError.
    const total = [...pkg.files.values()].reduce((n, b) => n + b.byteLength, 0);
    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ quota: total * 10, usage: 0 }), persist: async () => true } });
    let shardsOpened = 0;
    const store = {
      ...t.store,
      sink(id: string) {
        const sink = t.store.sink(id);
        return {
          ...sink,
          async openShard(name: string) {
            if (++shardsOpened === 2) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
            return sink.openShard(name);
          },
        };
      },
    };
    expect(pkg.manifest.shards.length).toBeGreaterThan(2);
    const err = await installFromUrl(store, server.url).catch((e) => e);
    expect(err).toBeInstanceOf(StorageQuotaError);
    expect(err.message).toMatch(/Installing model "pkg" ran out of browser storage after .* what was stored is removed/);
    expect(err.availableBytes).toBe(pkg.manifest.shards[0].byteSize);
    expect(await t.store.list()).toEqual([]);
    expect(await t.store.sink('pkg').stagedSize(pkg.manifest.shards[0].file)).toBeNull();
  });
  it('two installs of one id from different URLs run one after the other; the store never mixes them', async () => {
    serve2();
    expect(pkg2.manifest.shards.map((x) => x.file)).toEqual(pkg.manifest.shards.map((x) => x.file));
    expect(pkg2.manifest.shards[0].sha256).not.toBe(pkg.manifest.shards[0].sha256);
    // A second store over the same folder or database, as another process or tab would open it.
    const other = t.reopen();
    for (let round = 0; round < 4; round++) {
      const [a, b] = await Promise.all([
        installFromUrl(t.store, server.url, { id: 'm' }),
        installFromUrl(other, server2.url, { id: 'm' }),
      ]);
      expect([a.name, b.name].sort()).toEqual(['Tiny Q4', 'Tiny Q4 v2']);
      const m = await expectConsistent(t.store, 'm');
      expect([pkg.manifest, pkg2.manifest]).toContainEqual(m);
    }
  });

  it('a failed update leaves the installed version usable; a later one replaces it and keeps unchanged files', async () => {
    await installFromUrl(t.store, server.url, { id: 'm' });
    serve2();
    server2.missing.add('shard-00002.bin');
    const err = await installFromUrl(t.store, server2.url, { id: 'm' }).catch((e) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(await t.store.getManifest('m')).toEqual(pkg.manifest);
    for (const s of pkg.manifest.shards) expect(await t.store.readShard('m', s.file)).toEqual(pkg.files.get(s.file));

    serve2();
    server2.stallAfter.set('shard-00001.bin', { bytes: 0, times: 99 });
    await expect(installFromUrl(t.store, server2.url, { id: 'm', idleTimeoutMs: 100 })).rejects.toThrow(DownloadError);
    expect(await expectConsistent(t.store, 'm')).toEqual(pkg.manifest);

    serve2();
    const model = await installFromUrl(t.store, server2.url, { id: 'm' });
    expect(model.manifest).toEqual(pkg2.manifest);
    expect(await expectConsistent(t.store, 'm')).toEqual(pkg2.manifest);
    // The tokenizer is the same file in both versions: copied from the installed one, not downloaded.
    expect(pkg2.manifest.tokenizer.sha256).toBe(pkg.manifest.tokenizer.sha256);
    expect(server2.requests).not.toContain('tokenizer.model');
  });
});
