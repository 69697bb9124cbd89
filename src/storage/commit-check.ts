import { ModelIntegrityError, StorageError } from '../errors.ts';
import { sha256Hex } from '../formats/hash.ts';
import type { Manifest } from '../formats/manifest.ts';
import { parseManifest } from './package-check.ts';
import { releaseBytes } from './release.ts';

/**
 * Before a manifest is committed: it must be valid, and every file it names must be staged completely with the
 * byte size and sha256 it states. Sizes are checked first (cheap, and names every missing file at once); then each
 * file is read back and hashed, one at a time, so a file that another writer replaced, or that the disk changed,
 * is refused by name instead of being installed under a manifest that does not describe it.
 */
export async function checkCommit(
  id: string,
  manifest: Manifest,
  stagedSize: (name: string) => Promise<number | null>,
  readStaged: (name: string) => Promise<Uint8Array>,
): Promise<void> {
  parseManifest(manifest, `model "${id}" manifest`);
  const wanted = [manifest.tokenizer, ...manifest.shards];
  const sizes = await Promise.all(wanted.map((f) => stagedSize(f.file)));
  const bad = wanted
    .map((f, i) => (sizes[i] === f.byteSize ? null : `${f.file} (${sizes[i] === null ? 'missing' : `${sizes[i]} bytes, expected ${f.byteSize}`})`))
    .filter((s): s is string => s !== null);
  if (bad.length > 0) {
    throw new StorageError(
      id,
      `cannot commit the manifest: ${bad.length} file(s) are not stored completely: ${bad.slice(0, 5).join(', ')}${bad.length > 5 ? ', ...' : ''}. ` +
        'Write every shard and the tokenizer before committing.',
    );
  }
  for (const f of wanted) {
    const bytes = await readStaged(f.file);
    const sha = await sha256Hex(bytes);
    releaseBytes(bytes);
    if (sha !== f.sha256) {
      throw new ModelIntegrityError(
        id,
        f.file,
        `the staged file hashes to ${sha}, the manifest being committed says ${f.sha256}. Another writer changed it, or the storage ` +
          'is failing; nothing was committed. Install the model again (one install of an id at a time: hold store.lock(id)).',
      );
    }
  }
}

/**
 * The files an installed model keeps besides its manifest: the tokenizer and the shards. A commit drops anything
 * else staged (an import's journal, import-progress.json, or a shard of an earlier attempt), which nothing reads
 * once the model is installed.
 */
export function packageFiles(manifest: Manifest): Set<string> {
  return new Set([manifest.tokenizer.file, ...manifest.shards.map((s) => s.file)]);
}
