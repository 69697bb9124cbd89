/**
 * The Llama 2 tokenizer: the reference tokenizer.model run by SentencePiece, checked against ids produced
 * independently (llama.cpp's tokenizer test data), and models rebuilt from the vocab-only GGUF and from llama2.c's
 * tokenizer.bin checked to tokenize identically on a broad corpus.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeModelProto, encodeModelProto } from '../../src/tokenizer/proto.ts';
import { NativeSentencePiece } from '../../src/tokenizer/sentencepiece.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { countLlama2cTokens, vocabFromLlama2cTokenizer, type Vocab } from '../../src/tokenizer/vocab.ts';
import { corpus } from './corpus.ts';
import { LLAMA2_BIN, LLAMA2_GGUF, LLAMA2_MODEL, bytesOf, ggufVocab, rng } from './load.ts';

/**
 * Expected ids from llama.cpp's tokenizer tests for this vocab: models/ggml-vocab-llama-spm.gguf.out in
 * github.com/ggerganov/llama.cpp (commit 17f2243d6c1f53029e53ee6deef0e45e99734db0), written by
 * convert_hf_to_gguf_update.py from its `tests` list with Hugging Face's Llama 2 tokenizer,
 * `tokenizer.encode(text, add_special_tokens=False)`.
 */
const LLAMA_CPP_EXPECTED: [string, number[]][] = [
  ['ied 4 ½ months', [474, 287, 29871, 29946, 29871, 30226, 7378]],
  ['Führer', [383, 4000, 261]],
  ['', []],
  [' ', [259]],
  ['  ', [1678]],
  ['   ', [268]],
  ['\t', [29871, 12]],
  ['\n', [29871, 13]],
  ['\n\n', [29871, 13, 13]],
  ['\t\n', [29871, 12, 13]],
  ['Hello world', [15043, 3186]],
  [' Hello world', [29871, 15043, 3186]],
  ['Hello World', [15043, 2787]],
  [' Hello World!', [29871, 15043, 2787, 29991]],
  [' Hello, world!', [29871, 15043, 29892, 3186, 29991]],
  [' this is 🦙.cpp', [29871, 445, 338, 29871, 243, 162, 169, 156, 29889, 8223]],
  ['w048 7tuijk dsdfhu', [281, 29900, 29946, 29947, 29871, 29955, 9161, 13535, 18031, 2176, 6905]],
  ['нещо на Български', [1538, 4851, 665, 1386, 29713, 1305]],
  ['កាន់តែពិសេសអាចខលចេញ', [29871, 31849, 31324, 31934, 228, 162, 142, 228, 161, 146, 228, 162, 133, 228, 161, 153, 228, 161, 186, 31708, 228, 162, 132, 31708, 228, 161, 165, 31324, 228, 161, 136, 228, 161, 132, 228, 161, 158, 228, 161, 136, 228, 162, 132, 228, 161, 140]],
  ['🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)', [29871, 243, 162, 157, 131, 313, 8945, 29897, 29871, 243, 162, 155, 185, 30722, 243, 162, 143, 174, 30598, 313, 20787, 953, 3848, 275, 16125, 630, 29897, 29871, 31681, 313, 6194, 953, 29877, 2397, 393, 756, 967, 1914, 5993, 29897]],
  ['    Hello\n    Hello', [268, 15043, 13, 1678, 15043]],
  [' (', [29871, 313]],
  ['\n =', [29871, 13, 353]],
  ["' era", [525, 3152]],
  ["Hello, y'all! How are you 😁 ?我想在apple工作1314151天～", [15043, 29892, 343, 29915, 497, 29991, 1128, 526, 366, 29871, 243, 162, 155, 132, 1577, 30672, 31522, 30505, 11548, 31041, 30732, 29896, 29941, 29896, 29946, 29896, 29945, 29896, 30408, 30739]],
  ['333333333', [29871, 29941, 29941, 29941, 29941, 29941, 29941, 29941, 29941, 29941]],
];

/** Top-level fields of a serialized protobuf message: [field number, start, end) of each. */
function topLevelFields(bytes: Uint8Array): { field: number; start: number; end: number }[] {
  const out: { field: number; start: number; end: number }[] = [];
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[pos++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  };
  while (pos < bytes.length) {
    const start = pos;
    const key = varint();
    expect(key & 7).toBe(2); // ModelProto's top-level fields are all messages
    const length = varint();
    pos += length;
    out.push({ field: key >>> 3, start, end: pos });
  }
  return out;
}

function expectSameVocab(actual: Vocab, expected: Vocab): void {
  expect(actual.pieces.length).toBe(expected.pieces.length);
  for (let i = 0; i < expected.pieces.length; i++) {
    if (actual.pieces[i] !== expected.pieces[i] || actual.scores[i] !== expected.scores[i] || actual.types[i] !== expected.types[i]) {
      // One readable failure instead of 32,000 comparisons.
      expect({ id: i, piece: actual.pieces[i], score: actual.scores[i], type: actual.types[i] }).toEqual({
        id: i,
        piece: expected.pieces[i],
        score: expected.scores[i],
        type: expected.types[i],
      });
    }
  }
  expect([actual.bosId, actual.eosId, actual.unkId]).toEqual([expected.bosId, expected.eosId, expected.unkId]);
}

describe('Llama 2 tokenizer', () => {
  let reference: Tokenizer;
  let referenceVocab: Vocab;
  let referenceBytes: Uint8Array;
  let native: NativeSentencePiece;
  const errorHandlers = () => [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')];
  let handlersBefore: number[];
  let handlersAfter: number[];

  beforeAll(async () => {
    referenceBytes = bytesOf(LLAMA2_MODEL);
    referenceVocab = decodeModelProto(referenceBytes, 'tokenizer.model');
    handlersBefore = errorHandlers();
    reference = await Tokenizer.fromModelProto(referenceBytes, 'tokenizer.model');
    handlersAfter = errorHandlers();
    native = await NativeSentencePiece.load(referenceBytes, 'tokenizer.model');
  });

  /** SentencePiece's own DecodeIds as it reaches JS: embind decodes each NUL-separated segment of the result with
   *  a BOM-stripping TextDecoder, so one U+FEFF at the start of each segment is lost; `expected` is adjusted alike. */
  function expectNativeDecode(ids: number[], text: string): void {
    expect({ ids, text: text.replace(/(^|\0)\ufeff/g, '$1') }).toEqual({ ids, text: native.decodeIds(ids) });
  }

  it('encodes "Hello world" as [15043, 3186] (no BOS)', () => {
    expect(reference.encode('Hello world')).toEqual([15043, 3186]);
    expect([reference.vocabSize, reference.bosId, reference.eosId]).toEqual([32000, 1, 2]);
    expect([reference.piece(15043), reference.piece(1), reference.piece(13)]).toEqual(['\u2581Hello', '<s>', '<0x0A>']);
  });

  it("leaves the process's error handlers as they were (the wasm runtime's Node glue adds its own)", () => {
    expect(handlersAfter).toEqual(handlersBefore);
  });

  it("matches llama.cpp's reference ids for the llama-spm vocab", () => {
    for (const [text, ids] of LLAMA_CPP_EXPECTED) expect({ text, ids: reference.encode(text) }).toEqual({ text, ids });
  });

  it('rewrites the reference model with the same pieces section, byte for byte', () => {
    const rebuilt = encodeModelProto(referenceVocab);
    const refFields = topLevelFields(referenceBytes);
    const newFields = topLevelFields(rebuilt);
    const piecesEnd = (f: { field: number; end: number }[]) => f.filter((x) => x.field === 1).at(-1)!.end;
    expect(refFields.filter((f) => f.field === 1)).toHaveLength(32000);
    expect(Buffer.from(rebuilt.subarray(0, piecesEnd(newFields))).equals(Buffer.from(referenceBytes.subarray(0, piecesEnd(refFields))))).toBe(true);
    expectSameVocab(decodeModelProto(rebuilt, 'rebuilt'), referenceVocab);
  });

  it("reads the reference vocab from llama2.c's tokenizer.bin", () => {
    const bin = bytesOf(LLAMA2_BIN);
    expect(countLlama2cTokens(bin)).toBe(32000);
    expectSameVocab(vocabFromLlama2cTokenizer(bin, 32000), referenceVocab);
  });

  it('reads the reference vocab from the vocab-only GGUF', async () => {
    // Piece 30143 is U+FEFF: a UTF-8 reader that strips byte order marks turns it into an empty piece.
    expectSameVocab(await ggufVocab(LLAMA2_GGUF), referenceVocab);
  });

  /** Every corpus string encodes to the reference's ids and decodes back to the reference's text. */
  function expectSameTokenization(rebuilt: Tokenizer): void {
    const texts = corpus();
    expect(texts.some((t) => t.length > 10_000)).toBe(true);
    let tokens = 0;
    for (const text of texts) {
      const ids = reference.encode(text);
      tokens += ids.length;
      expect({ text, ids: rebuilt.encode(text) }).toEqual({ text, ids });
      expect(rebuilt.decode(ids)).toBe(reference.decode(ids));
    }
    expect(tokens).toBeGreaterThan(30_000);
  }

  it('tokenizes a broad corpus identically through a model rebuilt from tokenizer.bin', async () => {
    const bin = bytesOf(LLAMA2_BIN);
    expectSameTokenization(await Tokenizer.fromModelProto(encodeModelProto(vocabFromLlama2cTokenizer(bin, countLlama2cTokens(bin))), 'tokenizer.bin'));
  });

  it('tokenizes a broad corpus identically through a model rebuilt from the GGUF vocab', async () => {
    expectSameTokenization(await Tokenizer.fromModelProto(encodeModelProto(await ggufVocab(LLAMA2_GGUF)), 'ggml-vocab-llama-spm.gguf'));
  });

  it('decodes like SentencePiece on the corpus', () => {
    for (const text of corpus()) {
      const ids = reference.encode(text);
      expectNativeDecode(ids, reference.decode(ids));
    }
  });

  it('decodes what it encodes back to the same text', () => {
    // U+2581 is SentencePiece's stand-in for a space, so a literal one decodes as a space.
    for (const text of corpus()) expect(reference.decode(reference.encode(text))).toBe(text.replaceAll('\u2581', ' '));
    // Lone UTF-16 surrogates have no UTF-8 form and come back as U+FFFD.
    expect(reference.decode(reference.encode('a\ud800b'))).toBe('a\ufffdb');
    expect(reference.decode(reference.encode('\ufeffa\0\ufeffb'))).toBe('\ufeffa\0\ufeffb');
  });

  it("decodes like SentencePiece's own decoder, on encoded text and on random id sequences", () => {
    for (const text of corpus()) {
      const d = reference.createDecoder();
      const ids = reference.encode(text);
      expect(ids.map((id) => d.push(id)).join('') + d.flush()).toBe(text.replaceAll('\u2581', ' '));
    }
    // Random ids, most of them byte pieces (3..258) so broken and overlong UTF-8, control pieces and <unk> occur.
    const r = rng(11);
    for (let n = 0; n < 2000; n++) {
      const ids = Array.from({ length: 1 + Math.floor(r() * 12) }, () => (r() < 0.7 ? Math.floor(r() * 259) : Math.floor(r() * 32000)));
      const d = reference.createDecoder();
      const streamed = ids.map((id) => d.push(id)).join('') + d.flush();
      expect(reference.decode(ids)).toBe(streamed);
      expectNativeDecode(ids, streamed);
    }
  });

  it('holds a multi-byte character split across byte tokens until it is complete', () => {
    const ids = reference.encode('a🦙b');
    expect(ids.map((id) => reference.piece(id))).toEqual(['\u2581a', '<0xF0>', '<0x9F>', '<0xA6>', '<0x99>', 'b']);
    const d = reference.createDecoder();
    expect(ids.map((id) => d.push(id))).toEqual(['a', '', '', '', '🦙', 'b']);
    expect(d.flush()).toBe('');
    // A leading BOS prints nothing and keeps the first word's space dropped; an unfinished character at the end
    // comes out as U+FFFD per byte on flush.
    expect([d.push(1), d.push(15043), d.push(0xf0 + 3), d.push(0x9f + 3), d.flush()]).toEqual(['', 'Hello', '', '', '\ufffd\ufffd']);
  });

  it('rejects ids outside the vocab', () => {
    expect(() => reference.decode([32000])).toThrow(RangeError);
    expect(() => reference.createDecoder().push(-1)).toThrow(RangeError);
    expect(() => reference.piece(1.5)).toThrow(RangeError);
  });
});
