/**
 * A directory of model packages for Node: root/<id>/{manifest.json, tokenizer.model, shard-*.bin}, exactly the
 * layout the converter CLI writes, so a converted package directory is an installed model.
 *
 * Files are written as "<name>.partial" and renamed when complete, and manifest.json is renamed into place last:
 * a crash at any point leaves either the old state or a directory without manifest.json, which is not installed.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../errors.ts';
import type { Manifest } from '../formats/manifest.ts';
import { checkFileName, checkModelId, isModelId, parseManifest } from './package-check.ts';
import type { PackageSink, ShardWriter } from './sink.ts';
import { packageBytes, type InstalledModel, type ModelStore } from './store.ts';
import { checkCommit } from './commit-check.ts';

const MANIFEST = 'manifest.json';

export function createFsStore(root: string): ModelStore {
  const dir = (id: string) => {
    checkModelId(id);
    return path.join(root, id);
  };
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
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      throw e;
    }
    const manifest = parseManifest(text, p);
    return { id, name: manifest.name, bytes: packageBytes(manifest), installedAt: Math.round(mtime), manifest };
  }

  async function read(id: string, name: string): Promise<Uint8Array> {
    try {
      const b = await readFile(file(id, name));
      // A view of the Buffer's own memory rather than a copy: a shard is held once, not twice.
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StorageError(id, `${name} is not stored in ${dir(id)}. Install or convert the model again.`, { cause: e });
      }
      throw e;
    }
  }

  async function fileSize(id: string, name: string): Promise<number | null> {
    try {
      const s = await stat(file(id, name));
      return s.isFile() ? s.size : null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  function sink(id: string): PackageSink {
    const d = dir(id);
    let started: Promise<void> | undefined;
    // The first write uninstalls an earlier install of this id: its manifest no longer describes what is on disk.
    const start = () => (started ??= (async () => {
      await mkdir(d, { recursive: true });
      await rm(path.join(d, MANIFEST), { force: true });
    })());
    return {
      async writeFile(name, bytes) {
        const p = file(id, name);
        await start();
        await writeFile(p + '.partial', bytes);
        await rename(p + '.partial', p);
      },
      async openShard(name): Promise<ShardWriter> {
        const p = file(id, name);
        await start();
        await rm(p, { force: true });
        const handle = await open(p + '.partial', 'w');
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
            await rename(p + '.partial', p);
          },
        };
      },
      async commit(manifest: Manifest) {
        await start();
        await checkCommit(id, manifest, (name) => fileSize(id, name));
        const p = path.join(d, MANIFEST);
        await writeFile(p + '.partial', JSON.stringify(manifest, null, 2));
        await rename(p + '.partial', p);
      },
      async abort() {
        await rm(d, { recursive: true, force: true });
      },
    };
  }

  return {
    async list() {
      let names: string[];
      try {
        names = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw e;
      }
      // Other directories (a converter's temporary output, names that are not model ids) are not models.
      const models = await Promise.all(names.filter(isModelId).map((n) => installed(n)));
      return models.filter((m): m is InstalledModel => m !== null).sort((a, b) => a.id.localeCompare(b.id));
    },
    async getManifest(id) {
      return (await installed(id))?.manifest ?? null;
    },
    readShard: read,
    readFile: read,
    fileSize,
    async delete(id) {
      const d = dir(id);
      // The manifest goes first so that a delete interrupted half-way never leaves something that looks installed.
      await rm(path.join(d, MANIFEST), { force: true });
      await rm(d, { recursive: true, force: true });
    },
    sink,
  };
}
