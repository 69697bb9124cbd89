/**
 * GGUF (v2, v3) header reader: metadata key/values and tensor infos, streamed through a Cursor so only the
 * header is read. Layout: "GGUF" magic, u32 version, u64 tensor_count, u64 metadata_kv_count, the key/values,
 * the tensor infos (name, n_dims, ne[n_dims] as u64, ggml type, offset relative to the data section), then
 * padding to `general.alignment` (default 32) and the tensor data.
 */
import { ModelFormatError } from '../errors.ts';
import { Cursor } from './cursor.ts';
import type { ByteSource } from './source.ts';

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** ggml tensor types: id -> block size in elements and bytes per block. */
export const GGML_TYPES: Record<number, { name: string; blockSize: number; blockBytes: number }> = {
  0: { name: 'F32', blockSize: 1, blockBytes: 4 },
  1: { name: 'F16', blockSize: 1, blockBytes: 2 },
  2: { name: 'Q4_0', blockSize: 32, blockBytes: 18 },
  3: { name: 'Q4_1', blockSize: 32, blockBytes: 20 },
  6: { name: 'Q5_0', blockSize: 32, blockBytes: 22 },
  7: { name: 'Q5_1', blockSize: 32, blockBytes: 24 },
  8: { name: 'Q8_0', blockSize: 32, blockBytes: 34 },
  9: { name: 'Q8_1', blockSize: 32, blockBytes: 36 },
  10: { name: 'Q2_K', blockSize: 256, blockBytes: 84 },
  11: { name: 'Q3_K', blockSize: 256, blockBytes: 110 },
  12: { name: 'Q4_K', blockSize: 256, blockBytes: 144 },
  13: { name: 'Q5_K', blockSize: 256, blockBytes: 176 },
  14: { name: 'Q6_K', blockSize: 256, blockBytes: 210 },
  15: { name: 'Q8_K', blockSize: 256, blockBytes: 292 },
  16: { name: 'IQ2_XXS', blockSize: 256, blockBytes: 66 },
  17: { name: 'IQ2_XS', blockSize: 256, blockBytes: 74 },
  18: { name: 'IQ3_XXS', blockSize: 256, blockBytes: 98 },
  19: { name: 'IQ1_S', blockSize: 256, blockBytes: 50 },
  20: { name: 'IQ4_NL', blockSize: 32, blockBytes: 18 },
  21: { name: 'IQ3_S', blockSize: 256, blockBytes: 110 },
  22: { name: 'IQ2_S', blockSize: 256, blockBytes: 82 },
  23: { name: 'IQ4_XS', blockSize: 256, blockBytes: 136 },
  24: { name: 'I8', blockSize: 1, blockBytes: 1 },
  25: { name: 'I16', blockSize: 1, blockBytes: 2 },
  26: { name: 'I32', blockSize: 1, blockBytes: 4 },
  27: { name: 'I64', blockSize: 1, blockBytes: 8 },
  28: { name: 'F64', blockSize: 1, blockBytes: 8 },
  29: { name: 'IQ1_M', blockSize: 256, blockBytes: 56 },
  30: { name: 'BF16', blockSize: 1, blockBytes: 2 },
};

export interface GgufTensorInfo {
  name: string;
  /** ggml order: ne[0] is the fastest-varying dimension (columns), ne[1] rows. */
  shape: number[];
  ggmlType: number;
  /** Relative to `dataOffset`. */
  offset: number;
  byteSize: number;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, unknown>;
  tensors: GgufTensorInfo[];
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
  alignment: number;
}

// Caps on counts read from the header, checked before anything is allocated. Real llama files have a few hundred
// tensors and a few dozen keys; arrays (vocab, merges) are bounded by the bytes left in the file as well.
const MAX_TENSORS = 1 << 16;
const MAX_KV = 1 << 16;
const MAX_KEY_BYTES = 1 << 16;
const MAX_ARRAY_DEPTH = 2;
const MAX_DIMS = 4;

const enum VT { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 }
const SCALAR_BYTES = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];

export async function readGguf(source: ByteSource): Promise<GgufFile> {
  const file = source.name;
  const c = new Cursor(source);
  await c.need(24, 'header');
  const magic = c.u32();
  if (magic !== GGUF_MAGIC) throw new ModelFormatError(file, `not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF")`, 'magic');
  const version = c.u32();
  if (version !== 2 && version !== 3) {
    throw new ModelFormatError(file, `GGUF version ${version} is not supported (2 and 3 are); re-export it with a current llama.cpp`, 'version');
  }
  const tensorCount = c.u64('tensor_count');
  const kvCount = c.u64('metadata_kv_count');
  if (tensorCount > MAX_TENSORS) throw new ModelFormatError(file, `${tensorCount} tensors is more than the ${MAX_TENSORS} supported; the header is corrupt`, 'tensor_count');
  if (kvCount > MAX_KV) throw new ModelFormatError(file, `${kvCount} metadata keys is more than the ${MAX_KV} supported; the header is corrupt`, 'metadata_kv_count');

  const readString = async (what: string, max: number): Promise<string> => {
    await c.need(8, what);
    const n = c.u64(what);
    if (n > max) throw new ModelFormatError(file, `string of ${n} bytes is longer than the ${max} allowed; the header is corrupt`, what);
    await c.need(n, what);
    return c.utf8(n);
  };
  // Vocab pieces are text the tokenizer matches byte for byte: a replaced byte would silently change the vocab.
  const readToken = async (key: string, i: number): Promise<string> => {
    const what = `${key}[${i}]`;
    await c.need(8, what);
    const n = c.u64(what);
    if (n > remaining()) throw new ModelFormatError(file, `token ${i} of ${n} bytes runs past the end of the file; the file is truncated or corrupt`, what);
    await c.need(n, what);
    const text = c.utf8Strict(n);
    if (text === undefined) throw new ModelFormatError(file, `token ${i} is not valid UTF-8; the vocab is corrupt, download or re-export the GGUF`, what);
    return text;
  };
  const remaining = () => source.size - c.pos;

  const readValue = async (type: number, key: string, depth: number): Promise<unknown> => {
    if (type === VT.STRING) return readString(key, remaining());
    if (type === VT.ARRAY) {
      if (depth >= MAX_ARRAY_DEPTH) throw new ModelFormatError(file, 'arrays nested too deeply; the header is corrupt', key);
      await c.need(12, key);
      const et = c.u32();
      const n = c.u64(key);
      const minBytes = et === VT.STRING ? 8 : et === VT.ARRAY ? 12 : (SCALAR_BYTES[et] ?? 0);
      if (minBytes === 0) throw new ModelFormatError(file, `unknown array element type ${et}`, key);
      if (n * minBytes > remaining()) throw new ModelFormatError(file, `array of ${n} elements does not fit in the rest of the file; the file is truncated or corrupt`, key);
      const out: unknown[] = new Array(n);
      if (et !== VT.STRING && et !== VT.ARRAY) {
        await c.need(n * minBytes, key);
        for (let i = 0; i < n; i++) out[i] = scalar(et, key);
      } else {
        for (let i = 0; i < n; i++) out[i] = et === VT.STRING && key === 'tokenizer.ggml.tokens' ? await readToken(key, i) : await readValue(et, key, depth + 1);
      }
      return out;
    }
    const bytes = SCALAR_BYTES[type];
    if (bytes === undefined || bytes === 0) throw new ModelFormatError(file, `unknown metadata value type ${type}`, key);
    await c.need(bytes, key);
    return scalar(type, key);
  };
  const scalar = (type: number, key: string): number | boolean => {
    switch (type) {
      case VT.U8: return c.u8();
      case VT.I8: return c.i8();
      case VT.U16: return c.u16();
      case VT.I16: return c.i16();
      case VT.U32: return c.u32();
      case VT.I32: return c.i32();
      case VT.F32: return c.f32();
      case VT.BOOL: return c.u8() !== 0;
      case VT.U64: return c.u64(key);
      case VT.I64: return c.i64(key);
      case VT.F64: return c.f64();
    }
    throw new ModelFormatError(file, `unknown metadata value type ${type}`, key);
  };

  const metadata = new Map<string, unknown>();
  for (let i = 0; i < kvCount; i++) {
    const key = await readString(`metadata key ${i}`, MAX_KEY_BYTES);
    await c.need(4, key);
    const type = c.u32();
    metadata.set(key, await readValue(type, key, 0));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (typeof a !== 'number' || a < 1 || a > 1 << 20 || (a & (a - 1)) !== 0) {
      throw new ModelFormatError(file, `alignment ${String(a)} is not a power of two`, 'general.alignment');
    }
    alignment = a;
  }

  const infos: Omit<GgufTensorInfo, 'byteSize'>[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = await readString(`tensor info ${i}`, MAX_KEY_BYTES);
    await c.need(4, name);
    const nDims = c.u32();
    if (nDims < 1 || nDims > MAX_DIMS) throw new ModelFormatError(file, `${nDims} dimensions (1 to ${MAX_DIMS} allowed)`, name);
    await c.need(nDims * 8 + 12, name);
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) shape.push(c.u64(name));
    const ggmlType = c.u32();
    const offset = c.u64(name);
    infos.push({ name, shape, ggmlType, offset });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;

  const tensors = infos.map((t): GgufTensorInfo => {
    const type = GGML_TYPES[t.ggmlType];
    if (!type) throw new ModelFormatError(file, `unknown ggml tensor type ${t.ggmlType}; convert the model with a supported type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)`, t.name);
    let elements = 1;
    for (const d of t.shape) elements *= d;
    if (!Number.isSafeInteger(elements) || t.shape[0] % type.blockSize !== 0) {
      throw new ModelFormatError(file, `shape [${t.shape}] does not hold whole ${type.name} blocks of ${type.blockSize}`, t.name);
    }
    const byteSize = (elements / type.blockSize) * type.blockBytes;
    if (t.offset % alignment !== 0) throw new ModelFormatError(file, `data offset ${t.offset} is not aligned to ${alignment}`, t.name);
    if (dataOffset + t.offset + byteSize > source.size) {
      throw new ModelFormatError(file, `tensor data (${byteSize} bytes at ${dataOffset + t.offset}) runs past the end of the ${source.size}-byte file; the file is truncated, download it again`, t.name);
    }
    return { ...t, byteSize };
  });
  return { version, metadata, tensors, dataOffset, alignment };
}
