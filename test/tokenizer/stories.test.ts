/**
 * The stories260K sample's 512-piece vocab, from llama2.c's tok512.bin and from the GGUF: the same vocab, the same
 * tokenization, text that survives a round trip, and streaming output that reassembles split characters.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeModelProto } from '../../src/tokenizer/proto.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { PieceType, countLlama2cTokens, vocabFromLlama2cTokenizer, type Vocab } from '../../src/tokenizer/vocab.ts';
import { STORIES260K_GREEDY_IDS, STORIES260K_GREEDY_TEXT } from '../helpers/models.ts';
import { corpus } from './corpus.ts';
import { STORIES_BIN, STORIES_GGUF, bytesOf, ggufVocab } from './load.ts';

describe('stories260K 512-piece vocab', () => {
  let binVocab: Vocab;
  let fromBin: Tokenizer;
  let fromGguf: Tokenizer;

  beforeAll(async () => {
    const bin = bytesOf(STORIES_BIN);
    binVocab = vocabFromLlama2cTokenizer(bin, countLlama2cTokens(bin), 'tok512.bin');
    fromBin = await Tokenizer.fromModelProto(encodeModelProto(binVocab), 'tok512.bin');
    fromGguf = await Tokenizer.fromModelProto(encodeModelProto(await ggufVocab(STORIES_GGUF)), 'stories260Ktok512.gguf');
  });

  it('reads the same vocab from tok512.bin and the GGUF', async () => {
    const gguf = await ggufVocab(STORIES_GGUF);
    expect(binVocab.pieces).toHaveLength(512);
    expect(gguf.pieces).toEqual(binVocab.pieces);
    expect(gguf.scores).toEqual(binVocab.scores);
    // tok512.bin stores no types; those inferred from it match the ones the GGUF stores.
    expect(gguf.types).toEqual(binVocab.types);
    expect(binVocab.types.filter((t) => t === PieceType.BYTE)).toHaveLength(256);
    expect([fromBin.vocabSize, fromBin.bosId, fromBin.eosId]).toEqual([512, 1, 2]);
  });

  it("decodes llama2.c's documented greedy ids to its documented text", () => {
    // From llama2.c's documentation, via test/helpers/models.ts: the first ids generated from BOS alone.
    expect(STORIES260K_GREEDY_TEXT.startsWith(fromBin.decode(STORIES260K_GREEDY_IDS))).toBe(true);
    expect(fromBin.decode(STORIES260K_GREEDY_IDS)).toMatch(/^Once upon a time, /);
    expect(fromBin.encode(fromBin.decode(STORIES260K_GREEDY_IDS))).toEqual(STORIES260K_GREEDY_IDS);
  });

  it('tokenizes a broad corpus identically from both files', () => {
    for (const text of corpus()) expect({ text, ids: fromGguf.encode(text) }).toEqual({ text, ids: fromBin.encode(text) });
  });

  it('decodes what it encodes back to the same text, whole and streamed', () => {
    // U+2581 is SentencePiece's stand-in for a space, so a literal one decodes as a space.
    for (const text of corpus()) {
      const expected = text.replaceAll('\u2581', ' ');
      const ids = fromBin.encode(text);
      expect(fromBin.decode(ids)).toBe(expected);
      const d = fromBin.createDecoder();
      expect(ids.map((id) => d.push(id)).join('') + d.flush()).toBe(expected);
    }
  });

  it('reassembles multi-byte characters split across byte tokens', () => {
    // A 512-piece vocab has no pieces for these characters: after the dummy-prefix space, each of them is
    // spelled as its UTF-8 bytes.
    const text = '日本🦙';
    const bytes = [...new TextEncoder().encode(text)];
    const ids = fromBin.encode(text);
    expect(ids.map((id) => fromBin.piece(id))).toEqual(['\u2581', ...bytes.map((b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)]);
    const d = fromBin.createDecoder();
    // Each character comes out whole, once, with the push of its last byte; the leading space is dropped.
    expect(ids.map((id) => d.push(id))).toEqual(['', '', '', '日', '', '', '本', '', '', '', '🦙']);
    expect(d.flush()).toBe('');
  });
});
