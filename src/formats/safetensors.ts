/**
 * safetensors header reader: u64 little-endian header length N, N bytes of JSON
 * { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": {...} }, then the data; offsets are
 * relative to the end of the header.
 */
import { ModelFormatError } from '../errors.ts';
import { DENSE_ITEM_BYTES, type DenseDtype } from './tensor-views.ts';
import type { ByteSource } from './source.ts';

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  offset: number;
  byteLength: number;
}

/** safetensors' own reference implementation refuses headers over 100 MB. */
const MAX_HEADER_BYTES = 100_000_000;
const ITEM_BYTES: Record<string, number> = { ...DENSE_ITEM_BYTES, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1 };

export function isDenseDtype(d: string): d is DenseDtype {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

export async function readSafetensors(source: ByteSource): Promise<{ entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> }> {
  const file = source.name;
  if (source.size < 8) throw new ModelFormatError(file, `${source.size} bytes is too short for a safetensors file`, 'header length');
  const lenBytes = await source.read(0, 8);
  const n = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, source.size - 8)) || n < 2n) {
    throw new ModelFormatError(file, `header length ${n} does not fit the ${source.size}-byte file; the file is truncated or not safetensors`, 'header length');
  }
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await source.read(8, headerLen)));
  } catch (err) {
    throw new ModelFormatError(file, `header is not valid JSON (${(err as Error).message}); the file is corrupt or not safetensors`, 'header');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new ModelFormatError(file, 'header is not a JSON object', 'header');
  const dataStart = 8 + headerLen;
  const dataSize = source.size - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw && typeof raw === 'object') metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== 'object') throw new ModelFormatError(file, 'tensor entry is not an object', name);
    const item = typeof e.dtype === 'string' ? ITEM_BYTES[e.dtype] : undefined;
    if (item === undefined) throw new ModelFormatError(file, `unknown dtype ${JSON.stringify(e.dtype)}; expected F32, F16 or BF16`, name);
    const shape = e.shape;
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new ModelFormatError(file, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
      throw new ModelFormatError(file, `data_offsets ${JSON.stringify(off)} is not a [begin, end] pair`, name);
    }
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    if (off[1] - off[0] !== elements * item) {
      throw new ModelFormatError(file, `data_offsets span ${off[1] - off[0]} bytes but shape [${shape}] of ${e.dtype} needs ${elements * item}`, name);
    }
    if (off[1] > dataSize) {
      throw new ModelFormatError(file, `tensor data ends at ${dataStart + off[1]}, past the end of the ${source.size}-byte file; the file is truncated, download it again`, name);
    }
    entries.set(name, { name, dtype: e.dtype as string, shape: shape as number[], offset: dataStart + off[0], byteLength: off[1] - off[0] });
  }
  return { entries, metadata };
}
