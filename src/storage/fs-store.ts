/**
 * A directory of model packages for Node: root/<id>/{manifest.json, tokenizer.model, shard-*.bin}, exactly the
 * layout the converter CLI writes, so a converted package directory is an installed model.
 *
 * A sink writes into root/.staging-<id>/ (each file as "<name>.partial", renamed when complete). The commit hashes
 * the staged files, writes manifest.json there and swaps the staging directory in for root/<id>/ with two renames,
 * so the installed version stays whole until then. root/.lock-<id> is the id's write lock (lock()): created
 * exclusively, holding the owner's pid and host, and taken over only when that process is gone.
 * Names starting with "." are never model ids, so none of these is listed as a model.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StorageError } from '../errors.ts';
import type { Manifest } from '../formats/manifest.ts';
import { checkFileName, checkModelId, isModelId, parseManifest } from './package-check.ts';
import type { ShardWriter, StoreSink } from './sink.ts';
import { filesFingerprint, packageBytes, type InstalledModel, type ModelStore } from './store.ts';
import { checkCommit, packageFiles } from './commit-check.ts';

const MANIFEST = 'manifest.json';
/** Written into an installed model's directory once its files were hashed against the manifest (see isVerified). */
const VERIFIED = '.verified';
/** How often a waiting lock() looks at the lock file again. */
const LOCK_POLL_MS = 50;

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

export function createFsStore(root: string): ModelStore {
  const dir = (id: string) => {
    checkModelId(id);
    return path.join(root, id);
  };
  const staging = (id: string) => path.join(root, `.staging-${id}`);
  const file = (id: string, name: string) => {
    checkFileName(id, name);
    return path.join(dir(id), name);
  };

  async function installed(id: string): Promise<InstalledModel | null> {
    const p = path.join(dir(id), MANIFEST);
    let text: string;
    let mtime: number;
    try {
      [text, mtime] = await Promise.all([readFile(p, 'utf8'), stat(p).then((s) => s.mtimeMs)]);
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return null;
      throw e;
    }
    const manifest = parseManifest(text, p);
    return { id, name: manifest.name, bytes: packageBytes(manifest), installedAt: Math.round(mtime), manifest };
  }

  async function readIn(id: string, where: string, name: string, what: string): Promise<Uint8Array> {
    checkFileName(id, name);
    try {
      const b = await readFile(path.join(where, name));
      // A view of the Buffer's own memory rather than a copy: a shard is held once, not twice.
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if (errno(e) === 'ENOENT') throw new StorageError(id, `${name} is not ${what} in ${where}. Install or convert the model again.`, { cause: e });
      throw e;
    }
  }

  const read = (id: string, name: string) => readIn(id, dir(id), name, 'stored');

  /** Runs a file operation of a sink; a file removed under it (a delete() of the id meanwhile) is a StorageError. */
  async function staged<T>(id: string, name: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if (errno(e) === 'ENOENT') {
        throw new StorageError(id, `${name} was removed from ${staging(id)} while it was written (the model was deleted, or another writer of it committed, meanwhile). Install it again, one install of an id at a time.`, { cause: e });
      }
      throw e;
    }
  }

  function sink(id: string): StoreSink {
    const live = dir(id);
    const d = staging(id);
    const stagedPath = (name: string) => {
      checkFileName(id, name);
      return path.join(d, name);
    };
    const stagedSize = async (name: string) => {
      try {
        const s = await stat(stagedPath(name));
        return s.isFile() ? s.size : null;
      } catch (e) {
        if (errno(e) === 'ENOENT') return null;
        throw e;
      }
    };
    const readStaged = (name: string) => readIn(id, d, name, 'staged');
    return {
      stagedSize,
      readStaged,
      async writeFile(name, bytes) {
        const p = stagedPath(name);
        await mkdir(d, { recursive: true });
        await staged(id, name, async () => {
          await writeFile(p + '.partial', bytes);
          await rename(p + '.partial', p);
        });
      },
      async openShard(name): Promise<ShardWriter> {
        const p = stagedPath(name);
        await mkdir(d, { recursive: true });
        await rm(p, { force: true });
        const handle = await staged(id, name, () => open(p + '.partial', 'w'));
        let closed = false;
        return {
          async write(bytes) {
            if (closed) throw new StorageError(id, `${name} was written after close().`);
            let done = 0;
            while (done < bytes.byteLength) done += (await handle.write(bytes, done)).bytesWritten;
          },
          async close() {
            if (closed) return;
            closed = true;
            await handle.sync();
            await handle.close();
            await staged(id, name, () => rename(p + '.partial', p));
          },
        };
      },
      async commit(manifest: Manifest) {
        await checkCommit(id, manifest, stagedSize, readStaged);
        const keep = packageFiles(manifest);
        for (const name of await readdir(d)) if (!keep.has(name)) await rm(path.join(d, name), { recursive: true, force: true });
        const p = path.join(d, MANIFEST);
        await writeFile(p + '.partial', JSON.stringify(manifest, null, 2));
        await rename(p + '.partial', p);
        // Two renames: the old version moves aside, then the staged one takes its name. A crash between them leaves
        // no installed version and both directories; installing the id again resumes from the staged files.
        const old = path.join(root, `.replaced-${id}-${process.pid}-${Date.now()}`);
        let replaced = false;
        try {
          await rename(live, old);
          replaced = true;
        } catch (e) {
          if (errno(e) !== 'ENOENT') throw e;
        }
        await rename(d, live);
        if (replaced) await rm(old, { recursive: true, force: true });
      },
      async abort() {
        await rm(d, { recursive: true, force: true });
      },
    };
  }

  /** Takes root/.lock-<id>, waiting while a live process holds it; a lock left by a process that is gone is taken over. */
  async function acquire(id: string, signal?: AbortSignal): Promise<string> {
    checkModelId(id);
    const p = path.join(root, `.lock-${id}`);
    const mine = JSON.stringify({ pid: process.pid, host: os.hostname(), at: Date.now() });
    await mkdir(root, { recursive: true });
    for (;;) {
      signal?.throwIfAborted();
      try {
        await writeFile(p, mine, { flag: 'wx' });
        return p;
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
      }
      if (await staleLock(p)) {
        // Renamed away first so two waiters that both see it stale cannot both remove a fresh lock.
        const gone = `${p}.stale-${process.pid}-${Date.now()}`;
        await rename(p, gone).then(() => rm(gone, { force: true }), () => undefined);
        continue;
      }
      await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
    }
  }

  return {
    async list() {
      let names: string[];
      try {
        names = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
      } catch (e) {
        if (errno(e) === 'ENOENT') return [];
        throw e;
      }
      // Other directories (staging areas, a converter's temporary output, names that are not model ids) are not models.
      const models = await Promise.all(names.filter(isModelId).map((n) => installed(n)));
      return models.filter((m): m is InstalledModel => m !== null).sort((a, b) => a.id.localeCompare(b.id));
    },
    async getManifest(id) {
      return (await installed(id))?.manifest ?? null;
    },
    readShard: read,
    readFile: read,
    async delete(id) {
      const d = dir(id);
      // The manifest goes first so that a delete interrupted half-way never leaves something that looks installed.
      await rm(path.join(d, MANIFEST), { force: true });
      await rm(d, { recursive: true, force: true });
      await rm(staging(id), { recursive: true, force: true });
    },
    sink,
    async lock(id, fn, signal) {
      const p = await acquire(id, signal);
      try {
        return await fn();
      } finally {
        await rm(p, { force: true });
      }
    },
    async isVerified(id, manifest) {
      try {
        return (await readFile(path.join(dir(id), VERIFIED), 'utf8')) === filesFingerprint(manifest);
      } catch (e) {
        if (errno(e) === 'ENOENT') return false;
        throw e;
      }
    },
    async markVerified(id, manifest) {
      const fp = filesFingerprint(manifest);
      const current = await installed(id);
      if (!current || filesFingerprint(current.manifest) !== fp) return;
      // The mark holds the fingerprint it vouches for, so one landing in a directory swapped in meanwhile says nothing.
      const p = path.join(dir(id), VERIFIED);
      try {
        await writeFile(`${p}-${process.pid}.partial`, fp);
        await rename(`${p}-${process.pid}.partial`, p);
      } catch (e) {
        // Replaced or deleted meanwhile: nothing to mark. A read-only folder keeps no mark: loads verify each time.
        if (!['ENOENT', 'EACCES', 'EPERM', 'EROFS'].includes(errno(e) ?? '')) throw e;
      }
    },
  };
}

/** A lock file whose process is gone (same host, no such pid) or that cannot be read as one. */
async function staleLock(p: string): Promise<boolean> {
  let owner: { pid?: unknown; host?: unknown };
  try {
    owner = JSON.parse(await readFile(p, 'utf8'));
  } catch (e) {
    if (errno(e) === 'ENOENT') return false; // released meanwhile: try again at once
    // Being written right now (empty), or damaged: damaged only if it stays so.
    const s = await stat(p).catch(() => null);
    return s !== null && Date.now() - s.mtimeMs > 10_000;
  }
  if (owner.host !== os.hostname() || typeof owner.pid !== 'number') return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (e) {
    return errno(e) === 'ESRCH';
  }
}
