/**
 * A SentencePiece vocabulary as three parallel arrays, read from whichever file a model came with: a GGUF's
 * `tokenizer.ggml.*` metadata, a llama2.c tokenizer.bin, or (proto.ts) a SentencePiece tokenizer.model. Every
 * source is normalised to what tokenizer.model itself holds, so proto.ts can rebuild an equivalent model.
 */
import { ModelFormatError } from '../errors.ts';

/** SentencePiece piece types (ModelProto.SentencePiece.Type); GGUF's token_type uses the same numbers. */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

export interface Vocab {
  pieces: string[];
  scores: number[];
  /** SentencePiece: 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE. */
  types: number[];
  bosId: number;
  eosId: number;
  unkId: number;
}

/** SentencePiece's meta symbol for a space (U+2581); pieces store spaces as this. */
export const SPACE_SYMBOL = '\u2581';

const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

/** The byte a BYTE piece such as `<0x0A>` stands for, or -1 for any other piece. */
export function bytePieceValue(piece: string): number {
  const m = BYTE_PIECE.exec(piece);
  return m ? parseInt(m[1], 16) : -1;
}

/** Reads a vocab from GGUF metadata (`tokenizer.ggml.*`); `file` names the GGUF in error messages. */
export function vocabFromGguf(metadata: Map<string, unknown>, file = 'GGUF metadata'): Vocab {
  const model = metadata.get('tokenizer.ggml.model');
  if (model !== undefined && model !== 'llama') {
    throw new ModelFormatError(file, `tokenizer model "${String(model)}" is not a SentencePiece (llama) vocab; only Llama 2 style vocabs are supported`, 'tokenizer.ggml.model');
  }
  const pieces = ggufArray(metadata, file, 'tokenizer.ggml.tokens', 'string');
  const n = pieces.length;
  if (n === 0) throw new ModelFormatError(file, 'the vocab is empty; the file holds no usable tokenizer', 'tokenizer.ggml.tokens');
  const scores = metadata.has('tokenizer.ggml.scores') ? ggufArray(metadata, file, 'tokenizer.ggml.scores', 'number') : new Array<number>(n).fill(0);
  const types = metadata.has('tokenizer.ggml.token_type')
    ? ggufArray(metadata, file, 'tokenizer.ggml.token_type', 'number')
    : inferTypes(pieces as string[], 0, 1, 2);
  for (const [key, arr] of [['tokenizer.ggml.scores', scores], ['tokenizer.ggml.token_type', types]] as const) {
    if (arr.length !== n) throw new ModelFormatError(file, `has ${arr.length} entries but there are ${n} tokens; the file is corrupt`, key);
  }
  for (let i = 0; i < n; i++) {
    const t = types[i] as number;
    if (!Number.isInteger(t) || t < PieceType.NORMAL || t > PieceType.BYTE) {
      throw new ModelFormatError(file, `token ${i} has type ${t}, not a SentencePiece piece type (1 normal to 6 byte); the vocab is corrupt, download or re-export the GGUF`, `tokenizer.ggml.token_type[${i}]`);
    }
  }
  const id = (key: string, fallback: number): number => {
    const v = metadata.get(key) ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= n) {
      throw new ModelFormatError(file, `token id ${String(v)} is not in the ${n}-token vocab; the file is corrupt`, key);
    }
    return v;
  };
  return {
    pieces: pieces as string[],
    scores: scores as number[],
    types: types as number[],
    bosId: id('tokenizer.ggml.bos_token_id', 1),
    eosId: id('tokenizer.ggml.eos_token_id', 2),
    unkId: id('tokenizer.ggml.unknown_token_id', 0),
  };
}

function ggufArray(metadata: Map<string, unknown>, file: string, key: string, kind: 'string' | 'number'): unknown[] {
  const v = metadata.get(key);
  if (!Array.isArray(v)) throw new ModelFormatError(file, `missing or not an array; the GGUF carries no usable tokenizer`, key);
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== kind) throw new ModelFormatError(file, `entry ${i} is ${typeof v[i]}, expected a ${kind}; the file is corrupt`, key);
  }
  return v;
}

/**
 * Counts the entries of a llama2.c tokenizer.bin by walking it to the end (the file does not store the count;
 * llama2.c takes it from the checkpoint). Throws if the last entry is cut short.
 */
export function countLlama2cTokens(bytes: Uint8Array, file = 'tokenizer.bin'): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) throw new ModelFormatError(file, `file is ${bytes.byteLength} bytes, too short for a llama2.c tokenizer; the file is truncated`, 'max_token_length');
  let pos = 4;
  let count = 0;
  while (pos < bytes.byteLength) {
    if (pos + 8 > bytes.byteLength) throw truncated(file, count, pos, bytes.byteLength);
    const len = view.getInt32(pos + 4, true);
    if (len < 0 || pos + 8 + len > bytes.byteLength) throw truncated(file, count, pos, bytes.byteLength);
    pos += 8 + len;
    count++;
  }
  return count;
}

function truncated(file: string, i: number, pos: number, size: number): ModelFormatError {
  return new ModelFormatError(file, `token ${i} at offset ${pos} runs past the end of the ${size}-byte file; the file is truncated or is not a llama2.c tokenizer.bin`, `token ${i}`);
}

/**
 * Reads a llama2.c tokenizer.bin: int32 max_token_length, then per token f32 score, int32 byte length, UTF-8
 * bytes. llama2.c's exporter (tokenizer.py) wrote pieces with U+2581 replaced by a space and BOS/EOS as
 * "\n<s>\n" / "\n</s>\n", and no piece types; all three are undone here so the vocab matches tokenizer.model.
 */
export function vocabFromLlama2cTokenizer(bytes: Uint8Array, vocabSize: number, file = 'tokenizer.bin'): Vocab {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  if (!Number.isInteger(vocabSize) || vocabSize < 3) throw new ModelFormatError(file, `vocab size ${vocabSize} is too small for a Llama vocab (needs <unk>, <s>, </s>)`);
  if (bytes.byteLength < 4) throw new ModelFormatError(file, `file is ${bytes.byteLength} bytes, too short for a llama2.c tokenizer; the file is truncated`, 'max_token_length');
  const pieces: string[] = [];
  const scores: number[] = [];
  let pos = 4;
  for (let i = 0; i < vocabSize; i++) {
    if (pos + 8 > bytes.byteLength) throw truncated(file, i, pos, bytes.byteLength);
    const score = view.getFloat32(pos, true);
    const len = view.getInt32(pos + 4, true);
    if (len < 0 || pos + 8 + len > bytes.byteLength) throw truncated(file, i, pos, bytes.byteLength);
    let text: string;
    try {
      text = decoder.decode(bytes.subarray(pos + 8, pos + 8 + len));
    } catch {
      throw new ModelFormatError(file, `token ${i} is not valid UTF-8; the file is corrupt or is not a llama2.c tokenizer.bin`, `token ${i}`);
    }
    pieces.push(text);
    scores.push(score);
    pos += 8 + len;
  }
  if (pos !== bytes.byteLength) {
    throw new ModelFormatError(file, `${bytes.byteLength - pos} bytes remain after ${vocabSize} tokens; the vocab size does not match this tokenizer (it holds ${countLlama2cTokensSafe(bytes)} tokens)`);
  }
  const bosId = 1;
  const eosId = 2;
  const unkId = 0;
  for (let i = 0; i < pieces.length; i++) {
    if (i === bosId || i === eosId) pieces[i] = pieces[i].trim();
    else pieces[i] = pieces[i].replaceAll(' ', SPACE_SYMBOL);
  }
  return { pieces, scores, types: inferTypes(pieces, unkId, bosId, eosId), bosId, eosId, unkId };
}

function countLlama2cTokensSafe(bytes: Uint8Array): string {
  try {
    return String(countLlama2cTokens(bytes));
  } catch {
    return 'an unknown number of';
  }
}

/** Piece types for vocabs that do not store them: the special ids, `<0xNN>` byte pieces, the rest NORMAL. */
function inferTypes(pieces: string[], unkId: number, bosId: number, eosId: number): number[] {
  return pieces.map((p, i) =>
    i === unkId ? PieceType.UNKNOWN : i === bosId || i === eosId ? PieceType.CONTROL : bytePieceValue(p) >= 0 ? PieceType.BYTE : PieceType.NORMAL,
  );
}
