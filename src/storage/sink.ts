/**
 * Where a model package is written: a converter (src/formats/package-writer.ts) or installFromUrl writes the
 * tokenizer and shards, then commits the manifest. A store shows the model as installed only after commit, so an
 * interrupted write never looks like a usable model.
 */
export type { PackageSink, ShardWriter } from '../formats/package-writer.ts';
