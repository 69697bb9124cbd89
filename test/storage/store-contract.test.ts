/** The IndexedDB store and the directory store keep one contract: installed means committed, and commit is last. */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createStore, keys, setMany } from 'idb-keyval';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelIntegrityError, StorageError } from '../../src/errors.ts';
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
    for (const s of pkg.manifest.shards) expect(await t.store.readShard('tiny', s.file)).toEqual(pkg.files.get(s.file));
    expect(await t.store.readFile('tiny', 'tokenizer.model')).toEqual(pkg.files.get('tokenizer.model'));

    await t.store.delete('tiny');
    expect(await t.store.list()).toEqual([]);
    expect(await t.store.getManifest('tiny')).toBeNull();
    await expect(t.store.readShard('tiny', pkg.manifest.shards[0].file)).rejects.toThrow(/model "tiny": shard-00000.bin is not stored/);
  });

  it('shows nothing until the manifest is committed, and refuses a commit with files missing', async () => {
    await writeAll(t.store, 'tiny', pkg, false);
    expect(await t.store.list()).toEqual([]);
    expect(await t.store.getManifest('tiny')).toBeNull();
    await expect(t.store.readShard('tiny', pkg.manifest.shards[1].file)).rejects.toThrow(StorageError);
    // Staged files are readable by a later sink of the id (an install resumes from them) although nothing is installed.
    const sink = t.store.sink('tiny');
    expect(await sink.stagedSize(pkg.manifest.shards[1].file)).toBe(pkg.manifest.shards[1].byteSize);
    expect(await sink.readStaged(pkg.manifest.shards[1].file)).toEqual(pkg.files.get(pkg.manifest.shards[1].file));

    const bigger = structuredClone(pkg.manifest);
    bigger.shards.push({ file: 'shard-09999.bin', byteSize: 4, sha256: 'a'.repeat(64) });
    const err = await sink.commit(bigger).catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.message).toMatch(/shard-09999.bin \(missing\).*Write every shard/);
    expect(await t.store.getManifest('tiny')).toBeNull();
  });

  it('refuses to commit a staged file whose bytes do not hash to the manifest, naming it', async () => {
    await writeAll(t.store, 'tiny', pkg, false);
    const sink = t.store.sink('tiny');
    const file = pkg.manifest.shards[1].file;
    const w = await sink.openShard(file);
    await w.write(new Uint8Array(pkg.manifest.shards[1].byteSize).fill(0xff)); // right size, other bytes
    await w.close();
    const err = await sink.commit(pkg.manifest).catch((e) => e);
    expect(err).toBeInstanceOf(ModelIntegrityError);
    expect(err.modelId).toBe('tiny');
    expect(err.file).toBe(file);
    expect(err.message).toMatch(/model "tiny" shard-00001.bin: the staged file hashes to [0-9a-f]{64}, the manifest .* says [0-9a-f]{64}.*Install the model again/);
    expect(await t.store.getManifest('tiny')).toBeNull();
  });

  it('a shard whose writer was never closed does not count as staged', async () => {
    const sink = t.store.sink('tiny');
    const w = await sink.openShard('shard-00000.bin');
    await w.write(new Uint8Array(100));
    expect(await sink.stagedSize('shard-00000.bin')).toBeNull();
    await w.close();
    expect(await sink.stagedSize('shard-00000.bin')).toBe(100);
  });

  it('rewriting an installed id keeps it installed and readable until the new commit; abort leaves it as it was', async () => {
    await writeAll(t.store, 'tiny', pkg);
    const sink = t.store.sink('tiny');
    await sink.writeFile('tokenizer.model', new Uint8Array([1, 2, 3, 4]));
    const w = await sink.openShard(pkg.manifest.shards[0].file);
    await w.write(new Uint8Array(pkg.manifest.shards[0].byteSize));
    await w.close();
    expect(await t.store.getManifest('tiny')).toEqual(pkg.manifest);
    expect(await t.store.readFile('tiny', 'tokenizer.model')).toEqual(pkg.files.get('tokenizer.model'));
    expect(await t.store.readShard('tiny', pkg.manifest.shards[0].file)).toEqual(pkg.files.get(pkg.manifest.shards[0].file));
    await sink.abort();
    expect((await t.store.list()).map((m) => m.id)).toEqual(['tiny']);
    expect(await t.store.readShard('tiny', pkg.manifest.shards[0].file)).toEqual(pkg.files.get(pkg.manifest.shards[0].file));
    expect(await t.store.sink('tiny').stagedSize('tokenizer.model')).toBeNull();
  });

  it('a commit replaces the installed version whole; its files are gone afterwards', async () => {
    await writeAll(t.store, 'tiny', pkg);
    const v2 = await buildPackage(tinyConfig(), { dtype: 'q8', shardBytes: 48 * 1024, name: 'Tiny v2', seed: 7 });
    expect(v2.manifest.shards.length).toBeLessThan(pkg.manifest.shards.length);
    await writeAll(t.store, 'tiny', v2);
    expect(await t.store.getManifest('tiny')).toEqual(v2.manifest);
    for (const s of v2.manifest.shards) expect(await t.store.readShard('tiny', s.file)).toEqual(v2.files.get(s.file));
    const gone = pkg.manifest.shards.at(-1)!.file;
    await expect(t.store.readShard('tiny', gone)).rejects.toThrow(StorageError);
    expect(await t.store.sink('tiny').stagedSize(gone)).toBeNull();
  });

  it('lock(id) lets one holder in at a time, across two stores over the same storage, and not across ids', async () => {
    const other = t.reopen();
    const events: string[] = [];
    const hold = (store: ModelStore, id: string, name: string) =>
      store.lock(id, async () => {
        events.push(`${name} in`);
        await new Promise((r) => setTimeout(r, 150));
        events.push(`${name} out`);
        return name;
      });
    const results = await Promise.all([hold(t.store, 'm', 'a'), hold(other, 'm', 'b'), hold(other, 'n', 'c')]);
    expect(results).toEqual(['a', 'b', 'c']);
    const m = events.filter((e) => !e.startsWith('c'));
    expect([m[0][0], m[1][0]]).toEqual([m[0][0], m[0][0]]); // the first holder leaves before the second enters
    expect(m[2][0]).toBe(m[3][0]);
    expect(events.indexOf('c in')).toBeLessThan(events.indexOf(`${m[0][0]} out`)); // another id does not wait
    // A holder that throws releases the lock; an aborted wait gives up with the signal's reason.
    await expect(t.store.lock('m', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    const controller = new AbortController();
    let released!: () => void;
    const held = t.store.lock('m', () => new Promise<void>((r) => (released = r)));
    await new Promise((r) => setTimeout(r, 50));
    const waiting = other.lock('m', async () => 'never', controller.signal);
    controller.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
    released();
    await held;
    expect(await other.lock('m', async () => 'again')).toBe('again');
  });

  it('marks an installed manifest verified, and a new commit of the id clears the mark', async () => {
    await writeAll(t.store, 'tiny', pkg);
    expect(await t.store.isVerified('tiny', pkg.manifest)).toBe(false);
    await t.store.markVerified('tiny', pkg.manifest);
    expect(await t.store.isVerified('tiny', pkg.manifest)).toBe(true);
    const v2 = await buildPackage(tinyConfig(), { dtype: 'q8', shardBytes: 32 * 1024, seed: 5 });
    await t.store.markVerified('tiny', v2.manifest); // not the installed manifest: no mark
    expect(await t.store.isVerified('tiny', v2.manifest)).toBe(false);
    await writeAll(t.store, 'tiny', v2);
    expect(await t.store.isVerified('tiny', v2.manifest)).toBe(false);
    expect(await t.store.isVerified('tiny', pkg.manifest)).toBe(false);
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

  it('takes over a lock file left by a process that is gone, and waits for one whose process is alive', async () => {
    const [, make] = STORE_KINDS.find(([k]) => k === 'fs')!;
    const t = await make();
    try {
      const lockFile = path.join(t.root!, '.lock-m');
      const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!;
      await writeFile(lockFile, JSON.stringify({ pid: dead, host: os.hostname(), at: 0 }));
      expect(await t.store.lock('m', async () => JSON.parse(await readFile(lockFile, 'utf8')).pid)).toBe(process.pid);
      await expect(stat(lockFile)).rejects.toThrow(/ENOENT/); // released

      await writeFile(lockFile, JSON.stringify({ pid: process.ppid, host: os.hostname(), at: 0 }));
      const err = await t.store.lock('m', async () => 'entered', AbortSignal.timeout(300)).catch((e) => e);
      expect(err.name).toBe('TimeoutError');
    } finally {
      await t.cleanup();
    }
  });
});

describe('idb store generations', () => {
  it('reads a model stored before generations, and an update replaces it and removes its keys', async () => {
    const [, make] = STORE_KINDS.find(([k]) => k === 'idb')!;
    const t = await make();
    const pkg = await buildPackage(tinyConfig(), { dtype: 'q8', shardBytes: 32 * 1024 });
    try {
      const db = createStore(t.dbName!, 'shards');
      const entries: [string, unknown][] = [['old/model', { manifest: pkg.manifest, installedAt: 1 }]];
      for (const [name, bytes] of pkg.files) entries.push([`old/file/${name}`, { size: bytes.byteLength, pieces: 1 }], [`old/piece/${name}/0`, bytes]);
      await setMany(entries, db);
      expect(await t.store.getManifest('old')).toEqual(pkg.manifest);
      expect(await t.store.readShard('old', 'shard-00001.bin')).toEqual(pkg.files.get('shard-00001.bin'));

      const v2 = await buildPackage(tinyConfig(), { dtype: 'q8', shardBytes: 32 * 1024, seed: 3 });
      await writeAll(t.store, 'old', v2);
      expect(await t.store.readShard('old', 'shard-00001.bin')).toEqual(v2.files.get('shard-00001.bin'));
      const left = (await keys(db)) as string[];
      expect(left.filter((k) => k.startsWith('old/file/') || k.startsWith('old/piece/'))).toEqual([]);
      expect(left.filter((k) => k.startsWith('old/g/')).length).toBe(2 * v2.files.size);
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
      const sink = t.store.sink('big');
      const w = await sink.openShard('shard-00000.bin');
      await w.write(bytes.subarray(0, 5));
      await w.write(bytes.subarray(5));
      await w.close();
      const back = await sink.readStaged('shard-00000.bin');
      expect(back.byteLength).toBe(size);
      expect(Buffer.compare(back, bytes)).toBe(0);
    } finally {
      await t.cleanup();
    }
  });
});
