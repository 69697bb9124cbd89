/**
 * Where a model package is written: a converter (src/formats/package-writer.ts) or installFromUrl writes the
 * tokenizer and shards, then commits the manifest. A store shows the model as installed only after commit, so an
 * interrupted write never looks like a usable model.
 */
import type { Manifest } from '../formats/manifest.ts';

export interface ShardWriter {
  /** Appends bytes to the shard. */
  write(bytes: Uint8Array): Promise<void>;
  /** Marks the shard complete; a shard that was never closed does not count as stored. */
  close(): Promise<void>;
}

export interface PackageSink {
  /** Stores a whole small file (tokenizer.model). */
  writeFile(name: string, bytes: Uint8Array): Promise<void>;
  openShard(name: string): Promise<ShardWriter>;
  /** Checks every file the manifest names is stored with its byte size, then makes the model installed. */
  commit(manifest: Manifest): Promise<void>;
  /** Discards everything written for this model (and any earlier install of the same id). */
  abort(): Promise<void>;
}
