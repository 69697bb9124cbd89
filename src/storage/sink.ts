/**
 * Where a model package is written: a converter (src/formats/package-writer.ts) or installFromUrl writes the
 * tokenizer and shards, then commits the manifest. A store shows the model as installed only after commit, so an
 * interrupted write never looks like a usable model.
 */
import type { PackageSink } from '../formats/package-writer.ts';

export type { PackageSink, ShardWriter } from '../formats/package-writer.ts';

/**
 * A store's sink. Its files go to the id's staging area, which outlives the sink until commit() or abort(): an
 * install interrupted by a dropped connection or a closed tab resumes from the files it staged.
 */
export interface StoreSink extends PackageSink {
  /** Byte size of a completely staged file (its writer closed); null when absent or never closed. */
  stagedSize(name: string): Promise<number | null>;
  /** The bytes of a completely staged file. */
  readStaged(name: string): Promise<Uint8Array>;
  /** Removes what is staged; the installed model (if any) stays as it is. */
  abort(): Promise<void>;
}
