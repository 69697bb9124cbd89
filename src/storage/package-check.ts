/**
 * Checks on what a store is asked to hold: model ids and file names become directory and key names, and a
 * manifest from the network decides which byte ranges the loader copies, so both are checked before use.
 */
import { ModelFormatError, PackageVersionError, StorageError } from '../errors.ts';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type Manifest } from '../formats/manifest.ts';

/** Letters, digits, '.', '_' and '-', not starting with '.': safe as a directory name and a key part. */
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

export function checkModelId(id: string): void {
  if (typeof id !== 'string' || !SAFE_NAME.test(id)) {
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
 * Parses and checks a manifest: the format and version first (so a newer package says "upgrade" rather than
 * failing on a field it renamed), then that every chunk lies inside its shard.
 */
export function parseManifest(value: unknown, source: string): Manifest {
  const fail = (message: string, field?: string): never => {
    throw new ModelFormatError(source, `${message} The package is damaged or was not written by llama-webgpu; convert or download it again.`, field);
  };
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (cause) {
      fail(`is not valid JSON (${(cause as Error).message}).`);
    }
  }
  if (!value || typeof value !== 'object') fail('is not a JSON object.');
  const m = value as Partial<Manifest>;
  if (m.format !== MANIFEST_FORMAT) {
    throw new PackageVersionError(
      source,
      `format is ${JSON.stringify(m.format)}, not "${MANIFEST_FORMAT}". This is not a llama-webgpu model package; ` +
        'convert the model with the llama-webgpu converter, or upgrade llama-webgpu if the package comes from a newer release.',
    );
  }
  if (typeof m.formatVersion !== 'number' || !Number.isInteger(m.formatVersion) || m.formatVersion < 1) fail('has no valid formatVersion.', 'formatVersion');
  if (m.formatVersion! > MANIFEST_VERSION) {
    throw new PackageVersionError(
      source,
      `formatVersion ${m.formatVersion} is newer than this llama-webgpu reads (${MANIFEST_VERSION}). Upgrade llama-webgpu to load this package.`,
    );
  }
  if (typeof m.name !== 'string') fail('has no name.', 'name');
  if (!m.config || typeof m.config !== 'object') fail('has no config.', 'config');
  const tok = m.tokenizer;
  if (!tok || typeof tok.file !== 'string' || !isSize(tok.byteSize) || !isSha(tok.sha256)) fail('has no valid tokenizer entry.', 'tokenizer');
  if (!Array.isArray(m.shards) || !Array.isArray(m.tensors)) fail('needs "shards" and "tensors" arrays.');
  const names = new Set<string>();
  m.shards!.forEach((s, i) => {
    if (!s || typeof s.file !== 'string' || !isSize(s.byteSize) || !isSha(s.sha256)) fail(`shard ${i} needs file, byteSize and a hex sha256.`, `shards[${i}]`);
    if (names.has(s.file) || s.file === tok!.file) fail(`file ${s.file} is listed twice.`, `shards[${i}]`);
    names.add(s.file);
  });
  for (const t of m.tensors!) {
    const field = `tensor ${t?.name}`;
    if (!t || typeof t.name !== 'string' || !Array.isArray(t.shape) || !Array.isArray(t.chunks) || t.chunks.length === 0) fail('has a malformed tensor entry.', field);
    if (!['f32', 'f16', 'q8', 'q4'].includes(t.dtype)) fail(`dtype ${JSON.stringify(t.dtype)} is unknown.`, field);
    const rows = t.shape.length === 1 ? 1 : t.shape[0];
    let next = 0;
    for (const c of t.chunks) {
      if (c.rowStart !== next || !(c.rows > 0)) fail('chunks must cover the rows in order without gaps.', field);
      next += c.rows;
      for (const r of c.scales ? [c.data, c.scales] : [c.data]) {
        const shard = m.shards![r?.shard];
        if (!shard || !isSize(r.offset) || !isSize(r.byteLength) || r.offset + r.byteLength > shard.byteSize) {
          fail(`a chunk range lies outside its shard.`, field);
        }
      }
    }
    if (next !== rows) fail(`chunks cover ${next} rows, shape has ${rows}.`, field);
  }
  return m as Manifest;
}

function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function isSha(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
}
