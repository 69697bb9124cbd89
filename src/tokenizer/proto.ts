/**
 * SentencePiece ModelProto (sentencepiece_model.proto) reader and writer, hand-written for the few fields a
 * Llama tokenizer uses:
 *
 *   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL = 1)
 *   TrainerSpec     3 model_type (BPE = 2), 4 vocab_size, 35 byte_fallback, 40..43 unk/bos/eos/pad ids, ...
 *   NormalizerSpec  1 name, 2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces,
 *                   5 escape_whitespaces (ModelProto 3 normalizer_spec, 5 denormalizer_spec)
 *
 * encodeModelProto writes the settings Llama 2's own tokenizer.model carries (llama2.c trains its small vocabs
 * with the same ones), so a vocab taken from a GGUF or a llama2.c tokenizer.bin tokenizes exactly like the
 * original model.
 */
import { ModelFormatError } from '../errors.ts';
import { checkPrecompiledCharsMap } from './charsmap.ts';
import { PieceType, type Vocab } from './vocab.ts';

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const MODEL_TYPE_BPE = 2;

// ---------------------------------------------------------------------------------------------------------------
// Writing

class ProtoWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  private len = 0;
  private static readonly utf8 = new TextEncoder();

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Unsigned varint; negative int32 values are written as their 64-bit two's complement (10 bytes), as protobuf does. */
  varint(v: number): void {
    this.reserve(10);
    if (v >= 0 && v < 0x80) {
      this.buf[this.len++] = v; // keys, lengths of short strings, types, flags: almost every varint
      return;
    }
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.len++] = Number(x);
  }
  key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  int(field: number, v: number): void {
    this.key(field, WIRE_VARINT);
    this.varint(v);
  }
  bool(field: number, v: boolean): void {
    this.int(field, v ? 1 : 0);
  }
  float(field: number, v: number): void {
    this.key(field, WIRE_I32);
    this.reserve(4);
    this.view.setFloat32(this.len, v, true);
    this.len += 4;
  }
  bytes(field: number, b: Uint8Array): void {
    this.key(field, WIRE_LEN);
    this.varint(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  string(field: number, s: string): void {
    this.bytes(field, ProtoWriter.utf8.encode(s));
  }
  message(field: number, write: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    write(inner);
    this.bytes(field, inner.finish());
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** A Llama-style BPE ModelProto for `vocab`, equivalent to the reference tokenizer.model it came from. */
export function encodeModelProto(vocab: Vocab): Uint8Array {
  const n = vocab.pieces.length;
  if (vocab.scores.length !== n || vocab.types.length !== n) {
    throw new RangeError(`vocab arrays disagree: ${n} pieces, ${vocab.scores.length} scores, ${vocab.types.length} types`);
  }
  const w = new ProtoWriter();
  for (let i = 0; i < n; i++) {
    w.message(1, (p) => {
      p.string(1, vocab.pieces[i]);
      p.float(2, vocab.scores[i]);
      // NORMAL is the field's default; the reference model leaves it out.
      if (vocab.types[i] !== PieceType.NORMAL) p.int(3, vocab.types[i]);
    });
  }
  const byteFallback = vocab.types.includes(PieceType.BYTE);
  w.message(2, (t) => {
    // Field order and values follow Llama 2's tokenizer.model; only those that affect encoding or decoding
    // matter to SentencePiece at run time, the rest record how such a vocab is trained.
    t.int(3, MODEL_TYPE_BPE);
    t.int(4, n);
    t.int(20, 16); // max_sentencepiece_length
    t.bool(21, true); // split_by_unicode_script
    t.bool(22, true); // split_by_whitespace
    t.bool(23, true); // split_by_number
    t.bool(24, false); // treat_whitespace_as_suffix
    t.bool(25, true); // split_digits
    t.bool(26, true); // allow_whitespace_only_pieces
    t.bool(32, true); // vocabulary_output_piece_score
    t.bool(33, true); // hard_vocab_limit
    t.bool(34, false); // use_all_vocab
    t.bool(35, byteFallback);
    t.int(40, vocab.unkId);
    t.int(41, vocab.bosId);
    t.int(42, vocab.eosId);
    t.int(43, -1); // pad_id: Llama has no pad piece
    t.string(44, ' \u2047 '); // unk_surface: what decoding <unk> prints
    t.string(45, vocab.pieces[vocab.unkId]);
    t.string(46, vocab.pieces[vocab.bosId]);
    t.string(47, vocab.pieces[vocab.eosId]);
    t.string(48, '<pad>');
  });
  w.message(3, (s) => {
    s.string(1, 'identity');
    s.bytes(2, new Uint8Array(0));
    s.bool(3, true); // add_dummy_prefix: "Hello" encodes as "▁Hello"
    s.bool(4, false); // remove_extra_whitespaces: runs of spaces are kept
    s.bool(5, true); // escape_whitespaces: " " becomes "▁"
  });
  return w.finish();
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

class ProtoReader {
  pos: number;
  private readonly view: DataView;
  private static readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
    readonly end = bytes.length,
    start = 0,
  ) {
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(what: string): never {
    throw new ModelFormatError(this.file, `${what} at byte ${this.pos}; the file is truncated or is not a SentencePiece tokenizer.model, download it again`);
  }
  done(): boolean {
    return this.pos >= this.end;
  }
  varint(): bigint {
    if (this.pos < this.end && this.bytes[this.pos] < 0x80) return BigInt(this.bytes[this.pos++]);
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) this.fail('varint runs past the end of its message');
      const b = this.bytes[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
    }
    return this.fail('varint is longer than 10 bytes');
  }
  /** An int32 field (negative values arrive as 64-bit two's complement). */
  int32(): number {
    return Number(BigInt.asIntN(32, this.varint()));
  }
  key(): { field: number; wire: number } {
    const k = this.varint();
    const field = Number(k >> 3n);
    const wire = Number(k & 7n);
    if (field === 0) this.fail('field number 0');
    return { field, wire };
  }
  /** Bounds of a length-delimited field. */
  lenDelimited(): [number, number] {
    const len = Number(this.varint());
    const start = this.pos;
    if (len > this.end - start) this.fail(`field of ${len} bytes runs past the end of its message`);
    this.pos += len;
    return [start, start + len];
  }
  blob(): Uint8Array {
    const [s, e] = this.lenDelimited();
    return this.bytes.subarray(s, e);
  }
  string(): string {
    const [s, e] = this.lenDelimited();
    try {
      return ProtoReader.utf8.decode(this.bytes.subarray(s, e));
    } catch {
      return this.fail('string is not valid UTF-8');
    }
  }
  float(): number {
    if (this.pos + 4 > this.end) this.fail('float runs past the end of its message');
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_I64) this.advance(8);
    else if (wire === WIRE_LEN) this.lenDelimited();
    else if (wire === WIRE_I32) this.advance(4);
    else this.fail(`unsupported protobuf wire type ${wire}`);
  }
  private advance(n: number): void {
    if (this.pos + n > this.end) this.fail('field runs past the end of its message');
    this.pos += n;
  }
  sub(): ProtoReader {
    const [s, e] = this.lenDelimited();
    return new ProtoReader(this.bytes, this.file, e, s);
  }
  expect(wire: number, expected: number, field: string): void {
    if (wire !== expected) this.fail(`field ${field} has wire type ${wire}, expected ${expected}`);
  }
}

export interface ModelProtoInfo {
  vocab: Vocab;
  /** TrainerSpec.model_type: 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR. */
  modelType: number;
  byteFallback: boolean;
  normalizerName: string;
  addDummyPrefix: boolean;
  /** What decoding the unknown piece prints (TrainerSpec.unk_surface). */
  unkSurface: string;
}

/** The vocab of a SentencePiece tokenizer.model; `file` names it in error messages. */
export function decodeModelProto(bytes: Uint8Array, file = 'tokenizer.model'): Vocab {
  return readModelProto(bytes, file).vocab;
}

/** The vocab plus the model settings the tokenizer checks before trusting a model. */
export function readModelProto(bytes: Uint8Array, file = 'tokenizer.model'): ModelProtoInfo {
  const r = new ProtoReader(bytes, file);
  const pieces: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  // proto2 defaults of TrainerSpec and NormalizerSpec, for fields a file leaves out.
  let modelType = 1;
  let byteFallback = false;
  let unkId = 0;
  let bosId = 1;
  let eosId = 2;
  let normalizerName = '';
  let addDummyPrefix = true;
  let unkSurface = ' \u2047 ';
  // Later occurrences of a singular field replace earlier ones, as protobuf merges them.
  const charsMaps = new Map<string, Uint8Array>();
  while (!r.done()) {
    const { field, wire } = r.key();
    if (field === 1) {
      r.expect(wire, WIRE_LEN, 'pieces');
      const p = r.sub();
      let piece: string | undefined;
      let score = 0;
      let type: number = PieceType.NORMAL;
      while (!p.done()) {
        const k = p.key();
        if (k.field === 1 && k.wire === WIRE_LEN) piece = p.string();
        else if (k.field === 2 && k.wire === WIRE_I32) score = p.float();
        else if (k.field === 3 && k.wire === WIRE_VARINT) type = p.int32();
        else p.skip(k.wire);
      }
      if (piece === undefined) return r.fail(`piece ${pieces.length} has no text`);
      if (type < PieceType.NORMAL || type > PieceType.BYTE) r.fail(`piece ${pieces.length} has unknown type ${type}`);
      pieces.push(piece);
      scores.push(score);
      types.push(type);
    } else if (field === 2) {
      r.expect(wire, WIRE_LEN, 'trainer_spec');
      const t = r.sub();
      while (!t.done()) {
        const k = t.key();
        if (k.field === 44 && k.wire === WIRE_LEN) unkSurface = t.string();
        else if (k.wire !== WIRE_VARINT) t.skip(k.wire);
        else if (k.field === 3) modelType = t.int32();
        else if (k.field === 35) byteFallback = t.varint() !== 0n;
        else if (k.field === 40) unkId = t.int32();
        else if (k.field === 41) bosId = t.int32();
        else if (k.field === 42) eosId = t.int32();
        else t.skip(k.wire);
      }
    } else if (field === 3) {
      r.expect(wire, WIRE_LEN, 'normalizer_spec');
      const s = r.sub();
      while (!s.done()) {
        const k = s.key();
        if (k.field === 1 && k.wire === WIRE_LEN) normalizerName = s.string();
        else if (k.field === 2 && k.wire === WIRE_LEN) charsMaps.set('normalizer_spec.precompiled_charsmap', s.blob());
        else if (k.field === 3 && k.wire === WIRE_VARINT) addDummyPrefix = s.varint() !== 0n;
        else s.skip(k.wire);
      }
    } else if (field === 5) {
      r.expect(wire, WIRE_LEN, 'denormalizer_spec');
      const s = r.sub();
      while (!s.done()) {
        const k = s.key();
        if (k.field === 2 && k.wire === WIRE_LEN) charsMaps.set('denormalizer_spec.precompiled_charsmap', s.blob());
        else s.skip(k.wire);
      }
    } else {
      r.skip(wire);
    }
  }
  for (const [field, blob] of charsMaps) checkPrecompiledCharsMap(blob, file, field);
  const n = pieces.length;
  if (n === 0) throw new ModelFormatError(file, 'holds no pieces; it is not a SentencePiece tokenizer.model, check the file');
  for (const [name, id] of [['unk_id', unkId], ['bos_id', bosId], ['eos_id', eosId]] as const) {
    if (id < 0 || id >= n) throw new ModelFormatError(file, `${name} ${id} is not in the ${n}-piece vocab; the file is corrupt`, `trainer_spec.${name}`);
  }
  return { vocab: { pieces, scores, types, bosId, eosId, unkId }, modelType, byteFallback, normalizerName, addDummyPrefix, unkSurface };
}
