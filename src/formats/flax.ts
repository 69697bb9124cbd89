/**
 * Flax checkpoints as FlaxLlamaForCausalLM.save_pretrained writes them: flax_model.msgpack (or shards listed in
 * flax_model.msgpack.index.json) holding flax.serialization's msgpack of the nested params dict, with config.json
 * and tokenizer.model beside it. flax.serialization stores each numpy array as msgpack ext type 1 whose payload is
 * itself msgpack: [shape, dtype name, raw C-order bytes].
 *
 * The file is walked structurally over a Cursor (maps, keys, the small parts of each array) and every array is
 * recorded by its byte offset, so the weights are read later row by row and never loaded whole.
 * Param paths: model/embed_tokens/embedding [vocab, dim], model/layers/N/self_attn/q_proj/kernel (in, out), ...,
 * model/norm/weight, lm_head/kernel (dim, vocab); Dense kernels are the transpose of PyTorch's weight.
 */
import { ModelFormatError } from '../errors.ts';
import type { Checkpoint, CheckpointTensor } from './checkpoint.ts';
import { Cursor } from './cursor.ts';
import { finishHfCheckpoint, hfConfig, hfToOurName, readJson, type FileSet } from './hf-config.ts';
import type { ByteSource } from './source.ts';
import { denseTensor, transposedTensor, DENSE_ITEM_BYTES, type DenseDtype } from './tensor-views.ts';

export const FLAX_EXT_NDARRAY = 1;
const FLAX_DTYPES: Record<string, DenseDtype> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };
const INDEX = 'flax_model.msgpack.index.json';
const MAX_DEPTH = 32;
const MAX_ENTRIES = 1 << 20;

export interface FlaxArray {
  path: string;
  shape: number[];
  dtype: string;
  offset: number;
  byteLength: number;
}

/** Walks a flax.serialization msgpack file and lists its arrays by '/'-joined path. */
export async function scanFlaxMsgpack(source: ByteSource): Promise<FlaxArray[]> {
  const file = source.name;
  const c = new Cursor(source);
  const arrays: FlaxArray[] = [];
  const bad = (what: string, msg: string) => new ModelFormatError(file, `${msg}; the file is corrupt or not a Flax msgpack checkpoint`, what || 'root');

  // Reads one value's header; returns its kind and, for containers and blobs, the length.
  type Head = { kind: 'map' | 'array' | 'str' | 'bin' | 'ext' | 'scalar'; n: number; ext?: number; value?: unknown };
  const head = async (what: string): Promise<Head> => {
    await c.need(1, what);
    const b = c.u8();
    if (b <= 0x7f) return { kind: 'scalar', n: 0, value: b };
    if (b >= 0xe0) return { kind: 'scalar', n: 0, value: b - 256 };
    if (b >= 0x80 && b <= 0x8f) return { kind: 'map', n: b & 0xf };
    if (b >= 0x90 && b <= 0x9f) return { kind: 'array', n: b & 0xf };
    if (b >= 0xa0 && b <= 0xbf) return { kind: 'str', n: b & 0x1f };
    const sized = async (bytes: number, kind: Head['kind']): Promise<Head> => {
      await c.need(bytes, what);
      return { kind, n: bytes === 1 ? c.u8() : bytes === 2 ? c.u16BE() : c.u32BE() };
    };
    switch (b) {
      case 0xc0: return { kind: 'scalar', n: 0, value: null };
      case 0xc2: return { kind: 'scalar', n: 0, value: false };
      case 0xc3: return { kind: 'scalar', n: 0, value: true };
      case 0xc4: return sized(1, 'bin');
      case 0xc5: return sized(2, 'bin');
      case 0xc6: return sized(4, 'bin');
      case 0xc7: case 0xc8: case 0xc9: {
        const h = await sized(b === 0xc7 ? 1 : b === 0xc8 ? 2 : 4, 'ext');
        await c.need(1, what);
        return { ...h, ext: c.i8() };
      }
      case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf:
      case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        const bytes = [4, 8, 1, 2, 4, 8, 1, 2, 4, 8][b - 0xca];
        await c.need(bytes, what);
        const v = c.bytes(bytes);
        return { kind: 'scalar', n: 0, value: readNumber(b, v) };
      }
      case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        await c.need(1, what);
        return { kind: 'ext', n: 1 << (b - 0xd4), ext: c.i8() };
      case 0xd9: return sized(1, 'str');
      case 0xda: return sized(2, 'str');
      case 0xdb: return sized(4, 'str');
      case 0xdc: return sized(2, 'array');
      case 0xdd: return sized(4, 'array');
      case 0xde: return sized(2, 'map');
      case 0xdf: return sized(4, 'map');
    }
    throw bad(what, `byte 0x${b.toString(16)} at offset ${c.pos - 1} is not valid msgpack`);
  };
  const skipBytes = async (n: number, what: string) => {
    if (c.pos + n > source.size) throw bad(what, `a ${n}-byte value runs past the end of the ${source.size}-byte file`);
    c.pos += n;
  };
  const str = async (h: Head, what: string): Promise<string> => {
    if (h.kind !== 'str') throw bad(what, `expected a string key, found ${h.kind}`);
    if (h.n > 1 << 16) throw bad(what, `a ${h.n}-byte key is implausible`);
    await c.need(h.n, what);
    return c.utf8(h.n);
  };
  const skip = async (h: Head, what: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw bad(what, 'nesting too deep');
    if (h.kind === 'str' || h.kind === 'bin' || h.kind === 'ext') return skipBytes(h.n, what);
    const count = h.kind === 'map' ? h.n * 2 : h.kind === 'array' ? h.n : 0;
    if (count > MAX_ENTRIES || count > source.size - c.pos) throw bad(what, `${count} entries cannot fit in the file`);
    for (let i = 0; i < count; i++) await skip(await head(what), what, depth + 1);
  };
  // ext 1 payload: [shape (array of ints), dtype (str), data (bin)]
  const ndarray = async (h: Head, path: string): Promise<void> => {
    const end = c.pos + h.n;
    const tuple = await head(path);
    if (tuple.kind !== 'array' || tuple.n !== 3) throw bad(path, 'array payload is not [shape, dtype, bytes]');
    const sh = await head(path);
    if (sh.kind !== 'array' || sh.n > 8) throw bad(path, 'array shape is not a short list');
    const shape: number[] = [];
    for (let i = 0; i < sh.n; i++) {
      const d = await head(path);
      if (d.kind !== 'scalar' || typeof d.value !== 'number' || !Number.isSafeInteger(d.value) || d.value < 0) throw bad(path, 'array shape holds a non-integer');
      shape.push(d.value);
    }
    const dtype = await str(await head(path), path);
    const data = await head(path);
    if (data.kind !== 'bin') throw bad(path, 'array data is not a byte string');
    const offset = c.pos;
    await skipBytes(data.n, path);
    if (c.pos !== end) throw bad(path, 'array payload length disagrees with its contents');
    arrays.push({ path, shape, dtype, offset, byteLength: data.n });
  };
  const walk = async (path: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw bad(path, 'nesting too deep');
    const h = await head(path);
    if (h.kind === 'ext' && h.ext === FLAX_EXT_NDARRAY) {
      if (c.pos + h.n > source.size) throw bad(path, `a ${h.n}-byte array runs past the end of the ${source.size}-byte file`);
      return ndarray(h, path);
    }
    if (h.kind !== 'map') return skip(h, path, depth);
    if (h.n > MAX_ENTRIES || h.n * 2 > source.size - c.pos) throw bad(path, `${h.n} map entries cannot fit in the file`);
    for (let i = 0; i < h.n; i++) {
      const key = await str(await head(path), path);
      if (key === '__msgpack_chunked_array__') {
        throw new ModelFormatError(file, 'arrays over 1 GiB split by flax.serialization are not supported; save the model in shards (max_shard_size) or as safetensors', path);
      }
      await walk(path ? `${path}/${key}` : key, depth + 1);
    }
  };
  await walk('', 0);
  if (c.pos !== source.size) throw bad('root', `${source.size - c.pos} bytes follow the end of the checkpoint`);
  return arrays;
}

function readNumber(b: number, v: Uint8Array): number {
  const d = new DataView(v.buffer, v.byteOffset, v.byteLength);
  switch (b) {
    case 0xca: return d.getFloat32(0);
    case 0xcb: return d.getFloat64(0);
    case 0xcc: return d.getUint8(0);
    case 0xcd: return d.getUint16(0);
    case 0xce: return d.getUint32(0);
    case 0xcf: return Number(d.getBigUint64(0));
    case 0xd0: return d.getInt8(0);
    case 0xd1: return d.getInt16(0);
    case 0xd2: return d.getInt32(0);
    default: return Number(d.getBigInt64(0));
  }
}

async function msgpackNames(files: FileSet, folder: string): Promise<string[]> {
  if (files.has(INDEX)) {
    const map = (await readJson(files, INDEX, folder)).weight_map;
    if (!map || typeof map !== 'object') throw new ModelFormatError(INDEX, 'has no weight_map object', 'weight_map');
    const names = [...new Set(Object.values(map as Record<string, unknown>))];
    for (const n of names) {
      if (typeof n !== 'string' || !files.has(n)) throw new ModelFormatError(INDEX, `lists shard ${JSON.stringify(n)}, which is not in the folder; download every shard`, 'weight_map');
    }
    return names as string[];
  }
  if (files.has('flax_model.msgpack')) return ['flax_model.msgpack'];
  throw new ModelFormatError(folder, `no flax_model.msgpack or ${INDEX} in the folder`, 'flax_model.msgpack');
}

export async function openFlax(files: FileSet, options: { folder?: string; tokenizer?: ByteSource & { close?(): Promise<void> } } = {}): Promise<Checkpoint> {
  const folder = options.folder ?? 'model folder';
  const { config, tied } = hfConfig(await readJson(files, 'config.json', folder));
  const tensors = new Map<string, CheckpointTensor>();
  for (const shard of await msgpackNames(files, folder)) {
    const src = files.get(shard)!;
    for (const a of await scanFlaxMsgpack(src)) {
      // params/model/layers/0/self_attn/q_proj/kernel -> model.layers.0.self_attn.q_proj.weight
      const parts = a.path.split('/');
      if (parts[0] === 'params') parts.shift();
      const leaf = parts.pop();
      const transposed = leaf === 'kernel';
      const name = hfToOurName([...parts, leaf === 'embedding' || transposed ? 'weight' : leaf].join('.'));
      if (!name) continue;
      const dtype = FLAX_DTYPES[a.dtype];
      if (!dtype) throw new ModelFormatError(shard, `dtype "${a.dtype}" is not supported; expected float32, float16 or bfloat16`, a.path);
      const elements = a.shape.reduce((x, y) => x * y, 1);
      if (a.byteLength !== elements * DENSE_ITEM_BYTES[dtype]) {
        throw new ModelFormatError(shard, `${a.byteLength} data bytes do not match shape [${a.shape}] of ${a.dtype}`, a.path);
      }
      if (a.shape.length < 1 || a.shape.length > 2 || (transposed && a.shape.length !== 2)) {
        throw new ModelFormatError(shard, `shape [${a.shape}] is not a ${transposed ? 'matrix' : 'vector or matrix'}`, a.path);
      }
      if (tensors.has(name)) throw new ModelFormatError(shard, 'parameter appears twice', a.path);
      const t = transposed
        ? transposedTensor(src, name, a.offset, a.shape as [number, number], dtype)
        : denseTensor(src, name, a.offset, a.shape, dtype);
      tensors.set(name, { ...t, sourceName: a.path });
    }
  }
  return finishHfCheckpoint('flax', config, tied, tensors, files, folder, options.tokenizer);
}
