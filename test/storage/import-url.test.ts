/**
 * importFromUrl against a local server that answers Range requests: a GGUF file, a Hugging Face safetensors folder
 * (one file and two shards with an index), a llama2.c .bin with its tokenizer, and a model package. Each import
 * must write exactly the shards a local conversion of the same file writes; an interrupted import resumes without
 * fetching the finished shards' bytes again; bad URLs and servers fail with typed errors and stage nothing.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStore, keys } from 'idb-keyval';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadError, ModelFormatError } from '../../src/errors.ts';
import { openCheckpoint } from '../../src/formats/detect.ts';
import type { Manifest } from '../../src/formats/manifest.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint } from '../../src/formats/package-writer.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { huggingFaceResolve, importFromUrl, type ImportProgress } from '../../src/storage/import.ts';
import { writeHfFolder } from '../helpers/fixtures.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';
import { startRangeServer, type RangeServer } from '../helpers/range-server.ts';
import { STORE_KINDS, type TestStore } from './stores.ts';

const GGUF = 'stories260K/stories260Ktok512.gguf';
const have = haveSharedModel(GGUF) && haveSharedModel('stories260K/stories260K.bin');
/** Small shards, so the sample model spans several and an import can stop between them. */
const SHARD_BYTES = 256 << 10;

describe.skipIf(!have)('importFromUrl', () => {
  let tmp: string;
  let server: RangeServer;
  let local: Map<string, Manifest>;

  async function convertLocal(input: string, quant: 'f32' | 'q8', tokenizer?: string): Promise<Manifest> {
    const ckpt = await openCheckpoint(input, { tokenizer });
    try {
      return await convertCheckpoint(ckpt, await directorySink(path.join(tmp, 'local', `${path.basename(input)}-${quant}`)), { quant, shardBytes: SHARD_BYTES });
    } finally {
      await ckpt.close();
    }
  }

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'import-url-'));
    writeHfFolder(path.join(tmp, 'hf-one'));
    writeHfFolder(path.join(tmp, 'hf-two'), { shards: 2 });
    local = new Map([
      ['gguf', await convertLocal(sharedModel(GGUF), 'q8')],
      ['hf-one', await convertLocal(path.join(tmp, 'hf-one'), 'f32')],
      ['hf-two', await convertLocal(path.join(tmp, 'hf-two'), 'f32')],
      ['llama2c', await convertLocal(sharedModel('stories260K/stories260K.bin'), 'q8', sharedModel('stories260K/tok512.bin'))],
    ]);
    server = await startRangeServer({ '/models/': sharedModel('.'), '/hf/': tmp, '/pkg/': path.join(tmp, 'local') });
  });

  afterAll(async () => {
    await server?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const sameShards = (a: Manifest, b: Manifest) => {
    expect(a.shards).toEqual(b.shards);
    expect(a.tensors).toEqual(b.tensors);
    expect(a.tokenizer).toEqual(b.tokenizer);
  };

  it('a GGUF file: the same shards as a local conversion, streamed in Range requests', async () => {
    const store = createFsStore(path.join(tmp, 'store-gguf'));
    const seen: ImportProgress[] = [];
    server.sent = 0;
    server.rangeRequests = 0;
    const model = await importFromUrl(store, `${server.url}/models/${GGUF}`, { quant: 'q8', shardBytes: SHARD_BYTES, onProgress: (p) => seen.push(p) });
    expect(model.id).toBe('stories260Ktok512');
    sameShards(model.manifest, local.get('gguf')!);
    expect(model.manifest.source).toMatchObject({ format: 'gguf', quant: 'q8' });
    expect(server.rangeRequests).toBeGreaterThan(1);
    const size = readFileSync(sharedModel(GGUF)).byteLength;
    expect(server.sent).toBeLessThan(2 * size); // read-ahead wastes at most a piece now and then
    expect(seen[0].phase).toBe('open');
    expect(seen.at(-1)).toMatchObject({ phase: 'done' });
    expect(seen.filter((p) => p.phase === 'convert').at(-1)!.downloadedBytes).toBeGreaterThan(size / 2);
    // The engine's store reads it back as an installed model.
    expect((await store.list()).map((m) => m.id)).toEqual(['stories260Ktok512']);
  });

  it.each([
    ['hf-one', 'a folder with model.safetensors'],
    ['hf-two', 'a folder with model.safetensors.index.json and two shards'],
  ])('a Hugging Face folder (%s): %s', async (folder) => {
    const store = createFsStore(path.join(tmp, `store-${folder}`));
    const model = await importFromUrl(store, `${server.url}/hf/${folder}/`, { quant: 'f32', shardBytes: SHARD_BYTES, id: folder });
    sameShards(model.manifest, local.get(folder)!);
    expect(model.manifest.source?.format).toBe('safetensors');
  });

  it('a llama2.c .bin with its tokenizer URL', async () => {
    const store = createFsStore(path.join(tmp, 'store-llama2c'));
    const model = await importFromUrl(store, `${server.url}/models/stories260K/stories260K.bin`, {
      quant: 'q8', shardBytes: SHARD_BYTES, tokenizer: 'tok512.bin',
    });
    sameShards(model.manifest, local.get('llama2c')!);
  });

  it('a model package folder is installed as it is (installFromUrl)', async () => {
    const store = createFsStore(path.join(tmp, 'store-pkg'));
    const seen: ImportProgress[] = [];
    const model = await importFromUrl(store, `${server.url}/pkg/stories260Ktok512.gguf-q8/`, { id: 'pkg', onProgress: (p) => seen.push(p) });
    expect(model.manifest.shards).toEqual(local.get('gguf')!.shards);
    expect(seen.at(-1)).toMatchObject({ phase: 'done', done: model.bytes, total: model.bytes });
    expect(existsSync(path.join(tmp, 'store-pkg/pkg/import-progress.json'))).toBe(false);
  });

  it('resumes an interrupted import: finished shards are checked, not fetched again', async () => {
    const store = createFsStore(path.join(tmp, 'store-resume'));
    const url = `${server.url}/hf/hf-two/`;
    const controller = new AbortController();
    // Stop once three shards are written.
    await expect(
      importFromUrl(store, url, {
        quant: 'f32', shardBytes: SHARD_BYTES, id: 'resume', signal: controller.signal,
        onProgress: (p) => p.packageBytes > 3 * SHARD_BYTES && controller.abort(),
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(await store.getManifest('resume')).toBeNull();
    const journal = JSON.parse(readFileSync(path.join(tmp, 'store-resume/.staging-resume/import-progress.json'), 'utf8'));
    expect(journal.shards.length).toBeGreaterThanOrEqual(3);

    server.sent = 0;
    const resumed = await importFromUrl(store, url, { quant: 'f32', shardBytes: SHARD_BYTES, id: 'resume' });
    sameShards(resumed.manifest, local.get('hf-two')!);
    const whole = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'].reduce((n, f) => n + readFileSync(path.join(tmp, 'hf-two', f)).byteLength, 0);
    const skipped = journal.shards.reduce((n: number, s: { byteSize: number }) => n + s.byteSize, 0);
    expect(server.sent).toBeLessThan(whole - skipped / 2);
  });

  /** The names an installed model holds in `t`'s store: its folder's files, or the files its IndexedDB keys name. */
  async function installedNames(t: TestStore, id: string): Promise<string[]> {
    if (t.root) return readdirSync(path.join(t.root, id)).sort();
    const all = (await keys(createStore(t.dbName!, 'shards'))).map(String).filter((k) => k.startsWith(`${id}/`));
    const names = new Set(all.map((k) => (k === `${id}/model` ? 'manifest.json' : k.split('/')[4])));
    return [...names].sort();
  }

  it.each(STORE_KINDS)('an installed import holds only its manifest, tokenizer and shards, not its journal (%s store)', async (_, make) => {
    const t = await make();
    try {
      const url = `${server.url}/hf/hf-two/`;
      const controller = new AbortController();
      // Interrupted after two shards, with the journal staged; then resumed to the end.
      await expect(
        importFromUrl(t.store, url, {
          quant: 'f32', shardBytes: SHARD_BYTES, id: 'clean', signal: controller.signal,
          onProgress: (p) => p.packageBytes > 2 * SHARD_BYTES && controller.abort(),
        }),
      ).rejects.toMatchObject({ name: 'AbortError' });
      expect(await t.store.sink('clean').stagedSize('import-progress.json')).toBeGreaterThan(0);
      const model = await importFromUrl(t.store, url, { quant: 'f32', shardBytes: SHARD_BYTES, id: 'clean' });
      const want = ['manifest.json', model.manifest.tokenizer.file, ...model.manifest.shards.map((s) => s.file)].sort();
      expect(model.manifest.shards.length).toBeGreaterThan(2);
      expect(await installedNames(t, 'clean')).toEqual(want);
      expect(await t.store.sink('clean').stagedSize('import-progress.json')).toBeNull();
    } finally {
      await t.cleanup();
    }
  });

  it('a small checkpoint imports from a server that ignores Range requests, read whole', async () => {
    const store = createFsStore(path.join(tmp, 'store-norange'));
    server.ignoreRange = true;
    try {
      const model = await importFromUrl(store, `${server.url}/hf/hf-one/`, { quant: 'f32', shardBytes: SHARD_BYTES, id: 'norange' });
      sameShards(model.manifest, local.get('hf-one')!);
    } finally {
      server.ignoreRange = false;
    }
  });

  it('a connection that breaks off mid-body continues from the byte where it stopped', async () => {
    const store = createFsStore(path.join(tmp, 'store-break'));
    server.breakAfter = 50_000;
    const model = await importFromUrl(store, `${server.url}/hf/hf-one/`, { quant: 'f32', shardBytes: SHARD_BYTES, id: 'break' });
    expect(server.breakAfter).toBeNull(); // the break happened
    sameShards(model.manifest, local.get('hf-one')!);
  });

  it('a different source (a new ETag) starts over instead of reusing the journal', async () => {
    const store = createFsStore(path.join(tmp, 'store-etag'));
    const url = `${server.url}/models/${GGUF}`;
    const controller = new AbortController();
    await expect(
      importFromUrl(store, url, { quant: 'f32', shardBytes: SHARD_BYTES, id: 'etag', signal: controller.signal, onProgress: (p) => p.packageBytes > SHARD_BYTES && controller.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    server.etagSuffix = '-v2';
    try {
      server.sent = 0;
      const model = await importFromUrl(store, url, { quant: 'f32', shardBytes: SHARD_BYTES, id: 'etag' });
      expect(server.sent).toBeGreaterThanOrEqual(readFileSync(sharedModel(GGUF)).byteLength * 0.9);
      expect(model.manifest.shards.length).toBeGreaterThan(1);
    } finally {
      server.etagSuffix = '';
    }
  });

  it('refuses what it cannot import with typed errors, staging nothing', async () => {
    const root = path.join(tmp, 'store-bad');
    const store = createFsStore(root);
    const missing = importFromUrl(store, `${server.url}/models/stories260K/nope.gguf`);
    await expect(missing).rejects.toBeInstanceOf(DownloadError);
    await expect(missing).rejects.toMatchObject({ status: 404 });
    await expect(importFromUrl(store, `${server.url}/hf/`)).rejects.toThrow(/neither a model package \(manifest\.json\) nor a Hugging Face checkpoint/);
    await expect(importFromUrl(store, `${server.url}/models/stories260K/stories260K.bin`, { id: 'no-tok' })).rejects.toBeInstanceOf(ModelFormatError);
    server.ignoreRange = true;
    try {
      // A checkpoint beyond what is read whole needs Range requests.
      writeFileSync(path.join(tmp, 'big.gguf'), new Uint8Array(17 << 20));
      await expect(importFromUrl(store, `${server.url}/hf/big.gguf`)).rejects.toThrow(/ignores HTTP Range requests/);
    } finally {
      server.ignoreRange = false;
      rmSync(path.join(tmp, 'big.gguf'));
    }
    const left = existsSync(root) ? readdirSync(root).filter((n) => !n.startsWith('.lock')) : [];
    expect(left).toEqual([]);
  });

  it('llama-webgpu convert <url> <out> writes the package where a local conversion would', async () => {
    const out = path.join(tmp, 'cli-out', 's260');
    const { run } = await import('../../src/cli/convert.ts');
    expect(await run([`${server.url}/models/${GGUF}`, out, '--quant', 'q8', '--shard-mb', String(SHARD_BYTES / (1 << 20))])).toBe(0);
    const written = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as Manifest;
    sameShards(written, local.get('gguf')!);
    expect(readdirSync(path.join(tmp, 'cli-out')).filter((n) => !n.startsWith('.lock'))).toEqual(['s260']);
  });

  it('reads Hugging Face repository and file pages through their /resolve/ URLs', () => {
    const r = (u: string) => huggingFaceResolve(new URL(u)).href;
    expect(r('https://huggingface.co/org/repo')).toBe('https://huggingface.co/org/repo/resolve/main/');
    expect(r('https://huggingface.co/org/repo/tree/v1.0')).toBe('https://huggingface.co/org/repo/resolve/v1.0/');
    expect(r('https://huggingface.co/org/repo/blob/main/model.gguf')).toBe('https://huggingface.co/org/repo/resolve/main/model.gguf');
    expect(r('https://huggingface.co/org/repo/resolve/main/model.gguf')).toBe('https://huggingface.co/org/repo/resolve/main/model.gguf');
    expect(r('https://example.com/org/repo')).toBe('https://example.com/org/repo');
  });
});
