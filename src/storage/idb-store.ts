/**
 * Model packages in IndexedDB (through idb-keyval, in its own database "llama-webgpu", object store "shards").
 *
 * Keys, all strings so one key range selects everything of a model:
 *   "<id>/model"                   { manifest, installedAt, gen, verified? }  its presence means "installed"
 *   "<id>/staging"                 { gen }                  the generation a sink of the id writes into
 *   "<id>/g/<gen>/file/<name>"     { size, pieces }         written when the file is complete (writer closed)
 *   "<id>/g/<gen>/piece/<name>/<i>" Uint8Array              the file's bytes in PIECE_BYTES pieces
 * Each install writes a fresh generation; the commit points "<id>/model" at it and drops "<id>/staging" in one
 * transaction, then deletes the previous generation. So the installed version is untouched until the commit, and
 * an interrupted install resumes from its staged generation. (Models installed before generations existed have no
 * gen and keep their files at "<id>/file/<name>" and "<id>/piece/<name>/<i>"; they are read and replaced alike.)
 *
 * Why pieces: an IndexedDB value is structured-cloned whole, so a 64 MiB shard stored as one value would have to
 * be assembled in memory by every writer (a converter streaming tensors, a download) and cloned again on write.
 * With 16 MiB pieces a writer holds at most one piece, and a read fills one output buffer piece by piece.
 *
 * lock(id) is a Web Lock named "llama-webgpu:<database>:<id>" (shared by every tab and worker of the origin);
 * where navigator.locks is missing, a queue within this JS realm.
 */
import { createStore, del, delMany, get, promisifyRequest, set, type UseStore } from 'idb-keyval';
import { StorageError } from '../errors.ts';
import type { Manifest } from '../formats/manifest.ts';
import { checkCommit, packageFiles } from './commit-check.ts';
import { checkFileName, checkModelId, isModelId, parseManifest } from './package-check.ts';
import type { ShardWriter, StoreSink } from './sink.ts';
import { releaseBytes } from './release.ts';
import { filesFingerprint, packageBytes, type InstalledModel, type ModelStore } from './store.ts';

export const PIECE_BYTES = 16 * 1024 * 1024;

interface ModelRecord {
  manifest: Manifest;
  installedAt: number;
  /** The generation holding the files; absent for models stored before generations. */
  gen?: string;
  /** filesFingerprint(manifest) once a load hashed every file against it. */
  verified?: string;
}

interface FileRecord {
  size: number;
  pieces: number;
}

const modelKey = (id: string) => `${id}/model`;
const stagingKey = (id: string) => `${id}/staging`;
/** Where a generation's keys start ("<id>/" for a model stored before generations). */
const genBase = (id: string, gen: string | undefined) => (gen === undefined ? `${id}/` : `${id}/g/${gen}/`);
const fileKey = (base: string, name: string) => `${base}file/${name}`;
const pieceKey = (base: string, name: string, i: number) => `${base}piece/${name}/${i}`;

/** Web Locks where the platform has them; otherwise one promise chain per name in this realm. */
const localLocks = new Map<string, Promise<unknown>>();
async function withLock<T>(name: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const locks = (globalThis as { navigator?: Navigator }).navigator?.locks;
  if (locks) return locks.request(name, { signal }, fn) as Promise<T>;
  const before = localLocks.get(name) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = before.then(() => mine);
  localLocks.set(name, tail);
  try {
    await Promise.race([before, abortion(signal)]);
    return await fn();
  } finally {
    release();
    if (localLocks.get(name) === tail) localLocks.delete(name);
  }
}

function abortion(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (!signal) return;
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

export function createIdbStore(dbName = 'llama-webgpu'): ModelStore {
  const db: UseStore = createStore(dbName, 'shards');

  /** Every key starting with `prefix`, without loading values. */
  const keysUnder = (prefix: string): Promise<string[]> =>
    db('readonly', (s) => promisifyRequest(s.getAllKeys(IDBKeyRange.bound(prefix, prefix + '\uffff')))) as Promise<string[]>;

  /** Removes every key of a generation's files (for a pre-generation model, only its file and piece keys). */
  async function dropGeneration(id: string, gen: string | undefined): Promise<void> {
    const base = genBase(id, gen);
    const keys = gen === undefined ? [...(await keysUnder(`${base}file/`)), ...(await keysUnder(`${base}piece/`))] : await keysUnder(base);
    if (keys.length > 0) await delMany(keys, db);
  }

  async function installed(id: string): Promise<(InstalledModel & { record: ModelRecord }) | null> {
    checkModelId(id);
    const record = await get<ModelRecord>(modelKey(id), db);
    if (!record) return null;
    const manifest = parseManifest(record.manifest, `IndexedDB "${dbName}" model "${id}" manifest`);
    return { id, name: manifest.name, bytes: packageBytes(manifest), installedAt: record.installedAt, manifest, record };
  }

  async function readAt(id: string, base: string, name: string, what: string): Promise<Uint8Array> {
    checkFileName(id, name);
    const rec = await get<FileRecord>(fileKey(base, name), db);
    if (!rec) throw new StorageError(id, `${name} is not ${what} in IndexedDB "${dbName}". Install the model again.`);
    const out = new Uint8Array(rec.size);
    let at = 0;
    for (let i = 0; i < rec.pieces; i++) {
      const piece = await get<Uint8Array>(pieceKey(base, name, i), db);
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

  async function read(id: string, name: string): Promise<Uint8Array> {
    checkModelId(id);
    checkFileName(id, name);
    const record = await get<ModelRecord>(modelKey(id), db);
    if (!record) throw new StorageError(id, `${name} is not stored in IndexedDB "${dbName}": the model is not installed. Install it first.`);
    return readAt(id, genBase(id, record.gen), name, 'stored');
  }

  function sink(id: string): StoreSink {
    checkModelId(id);
    let base: Promise<string> | undefined;
    /** The id's staging generation: the one an earlier sink left, or a new one. */
    const staged = () =>
      (base ??= (async () => {
        const rec = await get<{ gen: string }>(stagingKey(id), db);
        if (rec) return genBase(id, rec.gen);
        const gen = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
        await set(stagingKey(id), { gen }, db);
        return genBase(id, gen);
      })());
    const stagedSize = async (name: string) => {
      checkFileName(id, name);
      const rec = await get<{ gen: string }>(stagingKey(id), db);
      if (!rec) return null;
      return (await get<FileRecord>(fileKey(genBase(id, rec.gen), name), db))?.size ?? null;
    };
    const readStaged = async (name: string) => readAt(id, await staged(), name, 'staged');

    async function openShard(name: string): Promise<ShardWriter> {
      checkFileName(id, name);
      const b = await staged();
      // Removes the file's record first (so it stops counting as complete), then its pieces.
      await del(fileKey(b, name), db);
      const old = await keysUnder(`${b}piece/${name}/`);
      if (old.length > 0) await delMany(old, db);
      let pending = new Uint8Array(PIECE_BYTES);
      let pendingBytes = 0;
      let pieces = 0;
      let size = 0;
      let closed = false;
      const flush = async () => {
        if (pendingBytes === 0) return;
        await set(pieceKey(b, name, pieces), pending.slice(0, pendingBytes), db);
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
          await set(fileKey(b, name), { size, pieces } satisfies FileRecord, db);
        },
      };
    }

    return {
      stagedSize,
      readStaged,
      async writeFile(name, bytes) {
        const w = await openShard(name);
        await w.write(bytes);
        await w.close();
      },
      openShard,
      async commit(manifest) {
        const b = await staged();
        await checkCommit(id, manifest, stagedSize, readStaged);
        // Staged files the manifest does not name (file/<name> and piece/<name>/<i> keys) are not installed.
        const keep = packageFiles(manifest);
        const stray = (await keysUnder(b)).filter((k) => !keep.has(k.slice(b.length).split('/')[1]));
        if (stray.length > 0) await delMany(stray, db);
        const gen = b.slice(`${id}/g/`.length, -1);
        // One transaction: the model record names the staged generation, and the staging record goes.
        const previous = await db('readwrite', async (s) => {
          const old = (await promisifyRequest(s.get(modelKey(id)))) as ModelRecord | undefined;
          const staging = (await promisifyRequest(s.get(stagingKey(id)))) as { gen: string } | undefined;
          if (staging?.gen !== gen) {
            throw new StorageError(id, 'its staging area was replaced or removed before the commit (another writer of the id, or a delete). Install it again, one install of an id at a time.');
          }
          s.put({ manifest, installedAt: Date.now(), gen } satisfies ModelRecord, modelKey(id));
          s.delete(stagingKey(id));
          await promisifyRequest(s.transaction);
          return old;
        });
        if (previous && previous.gen !== gen) await dropGeneration(id, previous.gen);
      },
      async abort() {
        const rec = await get<{ gen: string }>(stagingKey(id), db);
        await del(stagingKey(id), db);
        if (rec) await dropGeneration(id, rec.gen);
        base = undefined;
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
      const ids = all.filter((k) => k.endsWith('/model')).map((k) => k.slice(0, -'/model'.length)).filter(isModelId);
      const models = await Promise.all(ids.map((id) => installed(id)));
      return models
        .filter((m) => m !== null)
        .map(({ record: _record, ...m }) => m)
        .sort((a, b) => a.id.localeCompare(b.id));
    },
    async getManifest(id) {
      return (await installed(id))?.manifest ?? null;
    },
    readShard: read,
    readFile: read,
    delete: deleteModel,
    sink,
    lock: (id, fn, signal) => {
      checkModelId(id);
      return withLock(`llama-webgpu:${dbName}:${id}`, fn, signal);
    },
    async isVerified(id, manifest) {
      const m = await installed(id);
      return !!m && m.record.verified === filesFingerprint(manifest);
    },
    async markVerified(id, manifest) {
      checkModelId(id);
      const fp = filesFingerprint(manifest);
      await db('readwrite', async (s) => {
        const rec = (await promisifyRequest(s.get(modelKey(id)))) as ModelRecord | undefined;
        if (rec && filesFingerprint(rec.manifest) === fp) s.put({ ...rec, verified: fp } satisfies ModelRecord, modelKey(id));
        await promisifyRequest(s.transaction);
      });
    },
  };
}
