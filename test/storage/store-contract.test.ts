/** The IndexedDB store and the directory store keep one contract: installed means committed, and commit is last. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.ts';
import type { ModelStore } from '../../src/storage/store.ts';
import { PIECE_BYTES } from '../../src/storage/idb-store.ts';
import { buildPackage, tinyConfig, type BuiltPackage } from '../helpers/package.ts';
import { STORE_KINDS, type TestStore } from './stores.ts';

async function writeAll(store: ModelStore, id: string, pkg: BuiltPackage, commit = true): Promise<void> {
  const sink = store.sink(id);
  for (const [name, bytes] of pkg.files) {
    if (name === pkg.manifest.tokenizer.file) {
      await sink.writeFile(name, bytes);
      continue;
    }
    const w = await sink.openShard(name);
    // Several writes per shard, as a converter streaming tensors would do.
    for (let at = 0; at < bytes.byteLength; at += 10_000) await w.write(bytes.subarray(at, at + 10_000));
    await w.close();
  }
  if (commit) await sink.commit(pkg.manifest);
}

describe.each(STORE_KINDS)('%s store', (_kind, make) => {
  let t: TestStore;
  let pkg: BuiltPackage;
  beforeEach(async () => {
    t = await make();
    pkg = await buildPackage(tinyConfig(), { dtype: 'q8', shardBytes: 32 * 1024, name: 'Tiny Q8' });
  });
  afterEach(async () => t.cleanup());

  it('lists, reads back byte-exact, and deletes an installed model', async () => {
    expect(pkg.manifest.shards.length).toBeGreaterThan(2);
    expect(await t.store.list()).toEqual([]);
    const before = Date.now();
    await writeAll(t.store, 'tiny', pkg);
    const list = await t.store.list();
    expect(list.map((m) => [m.id, m.name])).toEqual([['tiny', 'Tiny Q8']]);
    const total = [...pkg.files.values()].reduce((n, b) => n + b.byteLength, 0);
    expect(list[0].bytes).toBe(total);
    expect(list[0].installedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(await t.store.getManifest('tiny')).toEqual(pkg.manifest);
    for (const s of pkg.manifest.shards) {
      expect(await t.store.readShard('tiny', s.file)).toEqual(pkg.files.get(s.file));
      expect(await t.store.fileSize('tiny', s.file)).toBe(s.byteSize);
    }
    expect(await t.store.readFile('tiny', 'tokenizer.model')).toEqual(pkg.files.get('tokenizer.model'));

    await t.store.delete('tiny');
    expect(await t.store.list()).toEqual([]);
    expect(await t.store.getManifest('tiny')).toBeNull();
    expect(await t.store.fileSize('tiny', pkg.manifest.shards[0].file)).toBeNull();
    await expect(t.store.readShard('tiny', pkg.manifest.shards[0].file)).rejects.toThrow(/model "tiny": shard-00000.bin is not stored/);
  });

  it('shows nothing until the manifest is committed, and refuses a commit with files missing', async () => {
    await writeAll(t.store, 'tiny', pkg, false);
    expect(await t.store.list()).toEqual([]);
    expect(await t.store.getManifest('tiny')).toBeNull();
    // Staged files are readable (an install resumes from them) although the model is not installed.
    expect(await t.store.fileSize('tiny', pkg.manifest.shards[1].file)).toBe(pkg.manifest.shards[1].byteSize);

    const bigger = structuredClone(pkg.manifest);
    bigger.shards.push({ file: 'shard-09999.bin', byteSize: 4, sha256: 'a'.repeat(64) });
    const err = await t.store.sink('tiny').commit(bigger).catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.message).toMatch(/shard-09999.bin \(missing\).*Write every shard/);
    expect(await t.store.getManifest('tiny')).toBeNull();
  });

  it('a shard whose writer was never closed does not count as stored', async () => {
    const sink = t.store.sink('tiny');
    const w = await sink.openShard('shard-00000.bin');
    await w.write(new Uint8Array(100));
    expect(await t.store.fileSize('tiny', 'shard-00000.bin')).toBeNull();
    await w.close();
    expect(await t.store.fileSize('tiny', 'shard-00000.bin')).toBe(100);
  });

  it('rewriting an installed id uninstalls it until the new commit; abort leaves nothing', async () => {
    await writeAll(t.store, 'tiny', pkg);
    const sink = t.store.sink('tiny');
    await sink.writeFile('tokenizer.model', new Uint8Array([1, 2, 3, 4]));
    expect(await t.store.getManifest('tiny')).toBeNull();
    await sink.abort();
    expect(await t.store.list()).toEqual([]);
    expect(await t.store.fileSize('tiny', 'tokenizer.model')).toBeNull();
    expect(await t.store.fileSize('tiny', pkg.manifest.shards[0].file)).toBeNull();
  });

  it('keeps models apart and rejects unsafe ids and file names', async () => {
    await writeAll(t.store, 'a', pkg);
    await writeAll(t.store, 'a.b', pkg);
    await t.store.delete('a');
    expect((await t.store.list()).map((m) => m.id)).toEqual(['a.b']);
    expect(await t.store.readShard('a.b', 'shard-00000.bin')).toEqual(pkg.files.get('shard-00000.bin'));
    expect(() => t.store.sink('../evil')).toThrow(StorageError);
    await expect(t.store.readShard('a.b', '../manifest.json')).rejects.toThrow(/file name "..\/manifest.json" is not allowed/);
    await expect(t.store.sink('a.b').openShard('manifest.json')).rejects.toThrow(StorageError);
  });
});

describe('fs store', () => {
  it('lists only directories holding a committed manifest, whatever else the folder holds', async () => {
    const [, make] = STORE_KINDS.find(([k]) => k === 'fs')!;
    const t = await make();
    try {
      await writeAll(t.store, 'tiny', await buildPackage(tinyConfig(), { shardBytes: 64 * 1024 }));
      await mkdir(path.join(t.root!, 'not a model id'));
      await mkdir(path.join(t.root!, 'tiny.partial-123-abc'));
      await writeFile(path.join(t.root!, 'stray-file.txt'), 'x');
      expect((await t.store.list()).map((m) => m.id)).toEqual(['tiny']);
    } finally {
      await t.cleanup();
    }
  });
});

describe('idb store pieces', () => {
  it('a shard larger than one piece round-trips through several pieces', async () => {
    const [, make] = STORE_KINDS.find(([k]) => k === 'idb')!;
    const t = await make();
    try {
      const size = PIECE_BYTES * 2 + 1000;
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i += 997) bytes[i] = i & 0xff;
      const w = await t.store.sink('big').openShard('shard-00000.bin');
      await w.write(bytes.subarray(0, 5));
      await w.write(bytes.subarray(5));
      await w.close();
      const back = await t.store.readShard('big', 'shard-00000.bin');
      expect(back.byteLength).toBe(size);
      expect(Buffer.compare(back, bytes)).toBe(0);
    } finally {
      await t.cleanup();
    }
  });
});
