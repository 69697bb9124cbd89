/**
 * Structural check of a SentencePiece precompiled_charsmap (NormalizerSpec field 2), the normalization rules the
 * native normalizer applies to every input before encoding. SentencePiece reads it without bounds checks, so a
 * corrupt one loads fine and then makes every encode read outside its buffer (in wasm: a "memory access out of
 * bounds" trap, or silently wrong text). The blob is
 *
 *   u32 trieBytes (little-endian) | darts-clone double array (trieBytes / 4 u32 units) | normalized strings
 *
 * A unit packs: label (bits 0-7, bit 31 set on value units), has_leaf (bit 8), offset (bits 10-31, shifted left by 8
 * more when bit 9 is set); a value unit holds a byte offset into the normalized strings (bits 0-30). Matching a byte
 * c at node position p reads units[p ^ c], moves to (p ^ c) ^ offset, and at a leaf reads the value unit there; the
 * normalized text starts at that value and ends at a NUL. The checks below bound every one of those reads for any
 * input, with the same per-unit rule as darts-clone's own DoubleArray::validate().
 */
import { ModelFormatError } from '../errors.ts';

const label = (u: number) => u & 0x800000ff;
const hasLeaf = (u: number) => ((u >>> 8) & 1) === 1;
const offset = (u: number) => (u >>> 10) << ((u & (1 << 9)) >>> 6);

/** Throws a ModelFormatError naming `file` and `field` unless `blob` is safe for SentencePiece to normalize with. */
export function checkPrecompiledCharsMap(blob: Uint8Array, file: string, field: string): void {
  if (blob.byteLength === 0) return; // no rules: the text is only whitespace-escaped
  const fail = (what: string): never => {
    throw new ModelFormatError(file, `${what}; the normalization rules are corrupt, get the tokenizer.model again`, field);
  };
  if (blob.byteLength <= 4) fail(`is ${blob.byteLength} bytes, too short to hold a trie`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const trieBytes = view.getUint32(0, true);
  if (trieBytes > blob.byteLength - 4) fail(`trie of ${trieBytes} bytes runs past the end of the ${blob.byteLength}-byte blob`);
  const size = Math.floor(trieBytes / 4);
  const unit = (i: number) => view.getUint32(4 + 4 * i, true);
  const normalized = blob.subarray(4 + trieBytes);
  const lastNul = normalized.lastIndexOf(0);

  if (size < 256) fail(`trie has ${size} units, fewer than the 256 of the smallest double array`);
  const root = unit(0);
  if (label(root) !== 0 || hasLeaf(root) || offset(root) === 0 || (offset(root) | 0xff) >= size) {
    fail(`trie root unit 0x${(root >>> 0).toString(16)} does not point inside the ${size}-unit trie`);
  }
  for (let i = 0; i < size; i++) {
    const u = unit(i);
    if (label(u) >>> 0 > 0xff) continue; // a value unit: its bits are a string offset, not a link
    const off = offset(u);
    const base = i ^ off;
    if (off !== 0 && (base | 0xff) >= size) fail(`trie unit ${i} links to units ${base}..${base | 0xff}, past the ${size}-unit trie`);
    if (!hasLeaf(u)) continue;
    const value = unit(base) & 0x7fffffff;
    if (value > lastNul) fail(`trie unit ${i} maps to byte ${value} of the ${normalized.byteLength}-byte normalized strings, which has no NUL-terminated string there`);
  }
}
