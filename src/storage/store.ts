/**
 * A place that holds installed model packages: IndexedDB in browsers (idb-store.ts), a directory in Node
 * (fs-store.ts). Both keep the same rules:
 *   - a sink writes into a staging area of its id, apart from the installed model, which stays usable until the
 *     commit replaces it in one step (a failed or abandoned update leaves the installed version as it was);
 *   - the commit hashes every staged file against the manifest (sha256), and the manifest is committed last;
 *   - lock(id) serializes writers of one id across tabs and workers (Web Locks) or processes (a lock file).
 */
import type { Manifest } from '../formats/manifest.ts';
import type { StoreSink } from './sink.ts';

export type { PackageSink, ShardWriter, StoreSink } from './sink.ts';

export interface InstalledModel {
  id: string;
  /** The manifest's human-readable name. */
  name: string;
  /** Stored bytes: every shard plus the tokenizer. */
  bytes: number;
  /** Milliseconds since the epoch when the manifest was committed. */
  installedAt: number;
  manifest: Manifest;
}

export interface ModelStore {
  /** Every completely installed model. */
  list(): Promise<InstalledModel[]>;
  /** The manifest of a complete install; null when `id` is not installed (or only partly written). */
  getManifest(id: string): Promise<Manifest | null>;
  /**
   * A whole shard, in memory of its own that the caller owns (a loader frees it with releaseBytes once uploaded).
   * Throws StorageError naming the model and file when it is not stored.
   */
  readShard(id: string, file: string): Promise<Uint8Array>;
  /** A whole non-shard file (tokenizer.model). */
  readFile(id: string, file: string): Promise<Uint8Array>;
  /** Removes the model and any partly installed files of it. */
  delete(id: string): Promise<void>;
  /**
   * A writer for package `id`, into the id's staging area: the installed model (if any) stays as it is until
   * commit() replaces it. Files staged by an earlier, interrupted sink of the id are kept (see StoreSink).
   * Hold lock(id) while writing: two sinks of one id share its staging area.
   */
  sink(id: string): StoreSink;
  /**
   * Runs `fn` holding the write lock of `id`, waiting for any other holder (another install in this or another
   * tab, worker or process). `signal` abandons the wait.
   */
  lock<T>(id: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** True when every file of the installed model was hashed against `manifest` since that manifest was committed. */
  isVerified(id: string, manifest: Manifest): Promise<boolean>;
  /** Records that the installed model's files hash to `manifest`'s sha256 (nothing when another manifest is installed now). */
  markVerified(id: string, manifest: Manifest): Promise<void>;
}

/** What a verification mark is tied to: the sha256 of every file a manifest names. */
export function filesFingerprint(manifest: Manifest): string {
  return [manifest.tokenizer, ...manifest.shards].map((f) => `${f.file}:${f.sha256}`).join(',');
}

/** Sum of the stored files of a package (shards and tokenizer). */
export function packageBytes(manifest: Manifest): number {
  return manifest.shards.reduce((n, s) => n + s.byteSize, 0) + manifest.tokenizer.byteSize;
}
