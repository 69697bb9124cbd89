/**
 * A place that holds installed model packages: IndexedDB in browsers (idb-store.ts), a directory in Node
 * (fs-store.ts). Both keep the same rule: a model is installed once its manifest is committed, and the manifest is
 * committed last, after every shard and the tokenizer are stored.
 */
import type { Manifest } from '../formats/manifest.ts';
import type { PackageSink } from './sink.ts';

export type { PackageSink, ShardWriter } from './sink.ts';

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
  /**
   * Byte size of a completely written file of `id`, installed or still being installed; null when absent or when
   * its writer was never closed. Lets an interrupted install resume without downloading stored shards again.
   */
  fileSize(id: string, file: string): Promise<number | null>;
  /** Removes the model and any partly installed files of it. */
  delete(id: string): Promise<void>;
  /** A writer for package `id`. Writing into an installed id first uninstalls it, so a half-overwritten model never looks complete. */
  sink(id: string): PackageSink;
}

/** Sum of the stored files of a package (shards and tokenizer). */
export function packageBytes(manifest: Manifest): number {
  return manifest.shards.reduce((n, s) => n + s.byteSize, 0) + manifest.tokenizer.byteSize;
}
