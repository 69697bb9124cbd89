/**
 * Node adapter: a PackageSink writing a package directory atomically. Everything goes into a temp directory beside
 * `out`; commit writes manifest.json last and renames the temp directory to `out` (an existing package at `out` is
 * replaced only then); abort, or any failure, removes the temp directory and leaves `out` as it was.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConvertOptionsError } from '../errors.ts';
import type { Manifest } from './manifest.ts';
import type { PackageSink, ShardWriter } from './package-writer.ts';

export async function directorySink(out: string): Promise<PackageSink & { readonly tempDir: string }> {
  const target = path.resolve(out);
  if (existsSync(target)) {
    const entries = await readdir(target).catch(() => null);
    if (entries === null) throw new ConvertOptionsError(`${target} exists and is not a directory; choose another output path`);
    if (entries.length > 0 && !entries.includes('manifest.json')) {
      throw new ConvertOptionsError(`${target} is a non-empty directory that is not a model package; refusing to replace it, choose another output path`);
    }
  }
  await mkdir(path.dirname(target), { recursive: true });
  const tempDir = `${target}.partial-${process.pid}-${Date.now().toString(36)}`;
  await mkdir(tempDir);
  const open_ = new Set<{ close(): Promise<void> }>();
  let finished = false;

  return {
    tempDir,
    async writeFile(name, bytes) {
      await writeFile(path.join(tempDir, name), bytes);
    },
    async openShard(name): Promise<ShardWriter> {
      const handle = await open(path.join(tempDir, name), 'w');
      const entry = { close: () => handle.close() };
      open_.add(entry);
      return {
        async write(bytes) {
          let done = 0;
          while (done < bytes.byteLength) done += (await handle.write(bytes, done, bytes.byteLength - done)).bytesWritten;
        },
        async close() {
          open_.delete(entry);
          await handle.sync();
          await handle.close();
        },
      };
    },
    async commit(manifest: Manifest) {
      await writeFile(path.join(tempDir, 'manifest.json'), JSON.stringify(manifest, null, 1));
      let old: string | null = null;
      if (existsSync(target)) {
        old = `${target}.old-${process.pid}-${Date.now().toString(36)}`;
        await rename(target, old);
      }
      try {
        await rename(tempDir, target);
      } catch (err) {
        if (old) await rename(old, target);
        throw err;
      }
      finished = true;
      if (old) await rm(old, { recursive: true, force: true });
    },
    async abort() {
      if (finished) return;
      finished = true;
      for (const h of open_) await h.close().catch(() => undefined);
      await rm(tempDir, { recursive: true, force: true });
    },
  };
}
