import { StorageError } from '../errors.ts';
import type { Manifest } from '../formats/manifest.ts';
import { parseManifest } from './package-check.ts';

/**
 * Before a manifest is committed: it must be valid, and every file it names must be stored completely with the
 * byte size it states. A commit that would install an incomplete package is refused with the missing files named.
 */
export async function checkCommit(id: string, manifest: Manifest, fileSize: (name: string) => Promise<number | null>): Promise<void> {
  parseManifest(manifest, `model "${id}" manifest`);
  const wanted = [manifest.tokenizer, ...manifest.shards];
  const sizes = await Promise.all(wanted.map((f) => fileSize(f.file)));
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
}
