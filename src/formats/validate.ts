/**
 * Checks a manifest.json before anything trusts it: the format marker and version, a sane config, every tensor the
 * config implies with the right shape and dtype, row chunks that tile each tensor, byte ranges of the right length
 * that are aligned and lie inside their shard. Returns the manifest typed; throws ModelFormatError naming the field.
 */
import { ModelFormatError } from '../errors.ts';
import { checkConfig, expectedShapes, expectedTensorCount } from './checkpoint.ts';
import { kvDim, type ModelConfig } from '../model/config.ts';
import { MANIFEST_FORMAT, MANIFEST_VERSION, SHARD_ALIGN, type ByteRange, type Manifest } from './manifest.ts';
import { isKDtype, K_BLOCK } from './kquant.ts';
import { encodedByteLengths, isQuantized, type WeightDtype } from './quant.ts';

const DTYPES: WeightDtype[] = ['f32', 'f16', 'q8', 'q4', 'q4k', 'q5k', 'q6k'];
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The fewest bytes a package of this config can hold: vectors in f32, each matrix in its smallest encoding. */
function leastPackageBytes(c: ModelConfig, withClassifier: boolean): number {
  const q4 = (rows: number, cols: number) => {
    const q = encodedByteLengths('q4', rows, cols, 'f16');
    return Math.min(q.data + q.scales, encodedByteLengths('f16', rows, cols).data);
  };
  const kv = kvDim(c);
  const layer = 2 * c.dim * 4 + 2 * q4(c.dim, c.dim) + 2 * q4(kv, c.dim) + 2 * q4(c.hiddenDim, c.dim) + q4(c.dim, c.hiddenDim);
  return q4(c.vocabSize, c.dim) * (withClassifier ? 2 : 1) + c.nLayers * layer + c.dim * 4;
}

export function validateManifest(json: unknown, file = 'manifest.json'): Manifest {
  const fail = (field: string, msg: string): never => {
    throw new ModelFormatError(file, `${msg}; convert the model again`, field);
  };
  if (!isObj(json)) return fail('manifest', 'is not a JSON object');
  if (json.format !== MANIFEST_FORMAT) fail('format', `is ${JSON.stringify(json.format)}, not "${MANIFEST_FORMAT}"`);
  if (json.formatVersion !== MANIFEST_VERSION) fail('formatVersion', `version ${String(json.formatVersion)} is not supported (expected ${MANIFEST_VERSION})`);
  if (typeof json.name !== 'string') fail('name', 'is not a string');
  if (!isObj(json.config)) return fail('config', 'is missing');
  const m = json as unknown as Manifest;
  checkConfig(m.config, file);
  if (!isObj(json.tokenizer) || typeof m.tokenizer.file !== 'string' || !isCount(m.tokenizer.byteSize) || typeof m.tokenizer.sha256 !== 'string') {
    fail('tokenizer', 'needs file, byteSize and sha256');
  }
  if (!Array.isArray(json.shards)) return fail('shards', 'is not a list');
  m.shards.forEach((s, i) => {
    if (!isObj(s) || typeof s.file !== 'string' || !/^[\w.-]+$/.test(s.file) || !isCount(s.byteSize) || !/^[0-9a-f]{64}$/.test(String(s.sha256))) {
      fail(`shards[${i}]`, 'needs a plain file name, byteSize and a hex sha256');
    }
  });
  if (!Array.isArray(json.tensors)) return fail('tensors', 'is not a list');
  const byName = new Map(m.tensors.map((t) => [isObj(t) ? t.name : undefined, t]));
  if (byName.size !== m.tensors.length) fail('tensors', 'lists a tensor twice');
  // The config must agree with the tensor list and the shard sizes before the per-layer list is built, so a
  // corrupt layer count or width costs only this arithmetic.
  const wantCount = expectedTensorCount(m.config, !m.sharedClassifier);
  if (m.tensors.length !== wantCount) {
    fail('tensors', `has ${m.tensors.length} tensors, the config (nLayers ${m.config.nLayers}) implies ${wantCount}`);
  }
  const shardBytes = m.shards.reduce((a, s) => a + s.byteSize, 0);
  const leastBytes = leastPackageBytes(m.config, !m.sharedClassifier);
  if (shardBytes < leastBytes) {
    fail('config', `the config needs at least ${leastBytes} bytes of weights but the shards hold ${shardBytes}`);
  }
  const want = expectedShapes(m.config, !m.sharedClassifier);

  const checkRange = (r: ByteRange | undefined, len: number, where: string) => {
    if (!isObj(r) || !isCount(r.shard) || !isCount(r.offset) || !isCount(r.byteLength)) return fail(where, 'is not a byte range');
    const shard = m.shards[r.shard];
    if (!shard) fail(where, `names shard ${r.shard}, which is not listed`);
    if (r.offset % SHARD_ALIGN !== 0) fail(where, `offset ${r.offset} is not aligned to ${SHARD_ALIGN}`);
    if (r.byteLength !== len) fail(where, `is ${r.byteLength} bytes; the shape and dtype need ${len}`);
    if (r.offset + r.byteLength > shard.byteSize) fail(where, `runs past the end of ${shard.file}`);
  };

  for (const [name, shape] of want) {
    const t = byName.get(name);
    if (!t) return fail(name, 'tensor is missing');
    if (!Array.isArray(t.shape) || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      fail(name, `shape ${JSON.stringify(t.shape)} does not match [${shape}] implied by the config`);
    }
    if (!DTYPES.includes(t.dtype)) fail(name, `dtype ${JSON.stringify(t.dtype)} is not one of ${DTYPES.join(', ')}`);
    if (shape.length === 1 && t.dtype !== 'f32') fail(name, 'vectors must be stored as f32');
    const scaleDtype = t.scaleDtype ?? 'f16';
    if (scaleDtype !== 'f16' && scaleDtype !== 'f32') fail(name, `scaleDtype ${JSON.stringify(scaleDtype)} is not f16 or f32`);
    const [rows, cols] = shape.length === 1 ? [1, shape[0]] : shape;
    if (isKDtype(t.dtype) && cols % K_BLOCK !== 0) fail(name, `${t.dtype} needs rows of whole ${K_BLOCK}-value blocks, but the tensor has ${cols} cols`);
    if (!Array.isArray(t.chunks) || t.chunks.length === 0) return fail(name, 'has no chunks');
    let next = 0;
    t.chunks.forEach((c, i) => {
      const where = `${name}.chunks[${i}]`;
      if (!isObj(c) || c.rowStart !== next || !isCount(c.rows) || c.rows < 1) fail(where, `rows must continue at row ${next}`);
      next += c.rows;
      const len = encodedByteLengths(t.dtype, c.rows, cols, scaleDtype);
      checkRange(c.data, len.data, `${where}.data`);
      if (isQuantized(t.dtype)) checkRange(c.scales, len.scales, `${where}.scales`);
      if (c.data.shard !== (c.scales?.shard ?? c.data.shard)) fail(where, 'data and scales lie in different shards');
    });
    if (next !== rows) fail(name, `chunks cover ${next} rows of ${rows}`);
  }
  return m;
}
