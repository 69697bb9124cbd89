/**
 * Checks on what a store is asked to hold: model ids and file names become directory and key names, and a
 * manifest from the network decides which byte ranges the loader copies, so both are checked before use.
 */
import { ModelFormatError, PackageVersionError, StorageError } from '../errors.ts';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type Manifest } from '../formats/manifest.ts';
import { validateManifest } from '../formats/validate.ts';

/** Letters, digits, '.', '_' and '-', not starting with '.': safe as a directory name and a key part. */
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

export function isModelId(id: string): boolean {
  return typeof id === 'string' && SAFE_NAME.test(id);
}

export function checkModelId(id: string): void {
  if (!isModelId(id)) {
    throw new StorageError(
      String(id),
      'is not a valid model id. Use 1-128 letters, digits, ".", "_" or "-", not starting with ".".',
    );
  }
}

export function checkFileName(id: string, file: string): void {
  if (typeof file !== 'string' || !SAFE_NAME.test(file) || file === 'manifest.json') {
    throw new StorageError(
      id,
      `file name "${file}" is not allowed in a package. Package files are plain names of letters, digits, ".", "_" and "-" (e.g. shard-00000.bin).`,
    );
  }
}

/** A model id derived from a package URL's last path segment (or the model name), made safe. */
export function modelIdFrom(text: string): string {
  const id = text.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '').slice(0, 128);
  return id || 'model';
}

/**
 * Parses and checks a manifest: the format and version first (so a package from a newer release says "upgrade"
 * rather than failing on a field it renamed), then the full structure (src/formats/validate.ts): every tensor the
 * config implies, chunks that tile each tensor, byte ranges inside their shards.
 */
export function parseManifest(value: unknown, source: string): Manifest {
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (cause) {
      throw new ModelFormatError(source, `is not valid JSON (${(cause as Error).message}); the package is damaged, download or convert it again`);
    }
  }
  const m = (value && typeof value === 'object' ? value : {}) as Partial<Manifest>;
  if (m.format !== MANIFEST_FORMAT) {
    throw new PackageVersionError(
      source,
      `format is ${JSON.stringify(m.format)}, not "${MANIFEST_FORMAT}". This is not a llama-webgpu model package; ` +
        'convert the model with the llama-webgpu converter, or upgrade llama-webgpu if the package comes from a newer release.',
    );
  }
  if (typeof m.formatVersion === 'number' && m.formatVersion > MANIFEST_VERSION) {
    throw new PackageVersionError(
      source,
      `formatVersion ${m.formatVersion} is newer than this llama-webgpu reads (${MANIFEST_VERSION}). Upgrade llama-webgpu to load this package.`,
    );
  }
  const manifest = validateManifest(value, source);
  const files = new Set([manifest.tokenizer.file]);
  for (const s of manifest.shards) {
    if (files.has(s.file)) throw new ModelFormatError(source, `file ${s.file} is listed twice; convert the model again`, 'shards');
    files.add(s.file);
  }
  return manifest;
}
