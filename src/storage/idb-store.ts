/**
 * Model packages in IndexedDB (through idb-keyval, in its own database "llama-webgpu", object store "shards").
 *
 * Keys, all strings so one key range selects everything of a model:
 *   "<id>/model"            { manifest, installedAt }   written last: its presence means "installed"
 *   "<id>/file/<name>"      { size, pieces }            written when the file is complete (writer closed)
 *   "<id>/piece/<name>/<i>" Uint8Array                  the file's bytes in PIECE_BYTES pieces
 *
 * Why pieces: an IndexedDB value is structured-cloned whole, so a 64 MiB shard stored as one value would have to
 * be assembled in memory by every writer (a converter streaming tensors, a download) and cloned again on write.
 * With 16 MiB pieces a writer holds at most one piece, and a read fills one output buffer piece by piece.
 */
import { createStore, del, delMany, get, promisifyRequest, set, setMany, type UseStore } from 'idb-keyval';
import { StorageError } from '../errors.ts';
import type { Manifest } from '../formats/manifest.ts';
import { checkCommit } from './commit-check.ts';
import { checkFileName, checkModelId, parseManifest } from './package-check.ts';
import type { PackageSink, ShardWriter } from './sink.ts';
import { releaseBytes } from './release.ts';
import { packageBytes, type InstalledModel, type ModelStore } from './store.ts';

export const PIECE_BYTES = 16 * 1024 * 1024;

interface ModelRecord {
  manifest: Manifest;
  installedAt: number;
}

interface FileRecord {
  size: number;
  pieces: number;
}

const modelKey = (id: string) => `${id}/model`;
const fileKey = (id: string, name: string) => `${id}/file/${name}`;
const pieceKey = (id: string, name: string, i: number) => `${id}/piece/${name}/${i}`;

export function createIdbStore(dbName = 'llama-webgpu'): ModelStore {
  const db: UseStore = createStore(dbName, 'shards');

  /** Every key of a model (or of one of its files, with `sub`), without loading values. */
  const keysUnder = (prefix: string): Promise<string[]> =>
    db('readonly', (s) => promisifyRequest(s.getAllKeys(IDBKeyRange.bound(prefix, prefix + '\uffff')))) as Promise<string[]>;

  async function installed(id: string): Promise<InstalledModel | null> {
    checkModelId(id);
    const rec = await get<ModelRecord>(modelKey(id), db);
    if (!rec) return null;
    const manifest = parseManifest(rec.manifest, `IndexedDB "${dbName}" model "${id}" manifest`);
    return { id, name: manifest.name, bytes: packageBytes(manifest), installedAt: rec.installedAt, manifest };
  }

  async function read(id: string, name: string): Promise<Uint8Array> {
    checkModelId(id);
    checkFileName(id, name);
    const rec = await get<FileRecord>(fileKey(id, name), db);
    if (!rec) throw new StorageError(id, `${name} is not stored in IndexedDB "${dbName}". Install the model again.`);
    const out = new Uint8Array(rec.size);
    let at = 0;
    for (let i = 0; i < rec.pieces; i++) {
      const piece = await get<Uint8Array>(pieceKey(id, name, i), db);
      if (!piece || at + piece.byteLength > rec.size) {
        throw new StorageError(id, `${name} is damaged in IndexedDB "${dbName}" (piece ${i} ${piece ? 'too long' : 'missing'}). Delete the model and install it again.`);
      }
      out.set(piece, at);
      at += piece.byteLength;
      releaseBytes(piece);
    }
    if (at !== rec.size) throw new StorageError(id, `${name} is damaged in IndexedDB "${dbName}" (${at} of ${rec.size} bytes). Delete the model and install it again.`);
    return out;
  }

  async function fileSize(id: string, name: string): Promise<number | null> {
    checkModelId(id);
    checkFileName(id, name);
    return (await get<FileRecord>(fileKey(id, name), db))?.size ?? null;
  }

  /** Removes a file's record first (so it stops counting as complete), then its pieces. */
  async function removeFile(id: string, name: string): Promise<void> {
    await del(fileKey(id, name), db);
    const pieces = await keysUnder(`${id}/piece/${name}/`);
    if (pieces.length > 0) await delMany(pieces, db);
  }

  function sink(id: string): PackageSink {
    checkModelId(id);
    let started: Promise<void> | undefined;
    // The first write uninstalls an earlier install of this id: its manifest no longer describes what is stored.
    const start = () => (started ??= del(modelKey(id), db));

    async function openShard(name: string): Promise<ShardWriter> {
      checkFileName(id, name);
      await start();
      await removeFile(id, name);
      let pending = new Uint8Array(PIECE_BYTES);
      let pendingBytes = 0;
      let pieces = 0;
      let size = 0;
      let closed = false;
      const flush = async () => {
        if (pendingBytes === 0) return;
        await set(pieceKey(id, name, pieces), pending.slice(0, pendingBytes), db);
        pieces++;
        pendingBytes = 0;
      };
      return {
        async write(bytes) {
          if (closed) throw new StorageError(id, `${name} was written after close().`);
          let at = 0;
          while (at < bytes.byteLength) {
            const n = Math.min(PIECE_BYTES - pendingBytes, bytes.byteLength - at);
            pending.set(bytes.subarray(at, at + n), pendingBytes);
            pendingBytes += n;
            at += n;
            size += n;
            if (pendingBytes === PIECE_BYTES) await flush();
          }
        },
        async close() {
          if (closed) return;
          closed = true;
          await flush();
          pending = new Uint8Array(0);
          await set(fileKey(id, name), { size, pieces } satisfies FileRecord, db);
        },
      };
    }

    return {
      async writeFile(name, bytes) {
        const w = await openShard(name);
        await w.write(bytes);
        await w.close();
      },
      openShard,
      async commit(manifest) {
        await start();
        await checkCommit(id, manifest, (name) => fileSize(id, name));
        await setMany([[modelKey(id), { manifest, installedAt: Date.now() } satisfies ModelRecord]], db);
      },
      async abort() {
        await deleteModel(id);
      },
    };
  }

  async function deleteModel(id: string): Promise<void> {
    checkModelId(id);
    // The model record goes first so that a delete interrupted half-way never leaves something that looks installed.
    await del(modelKey(id), db);
    const keys = await keysUnder(`${id}/`);
    if (keys.length > 0) await delMany(keys, db);
  }

  return {
    async list() {
      const all = (await db('readonly', (s) => promisifyRequest(s.getAllKeys()))) as string[];
      const ids = all.filter((k) => k.endsWith('/model')).map((k) => k.slice(0, -'/model'.length));
      const models = await Promise.all(ids.map((id) => installed(id)));
      return models.filter((m): m is InstalledModel => m !== null).sort((a, b) => a.id.localeCompare(b.id));
    },
    async getManifest(id) {
      return (await installed(id))?.manifest ?? null;
    },
    readShard: read,
    readFile: read,
    fileSize,
    delete: deleteModel,
    sink,
  };
}
