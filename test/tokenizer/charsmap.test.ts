/**
 * Normalization rules (precompiled_charsmap): well-formed ones are applied by the native normalizer, corrupt ones
 * are refused at load with a ModelFormatError naming the file and field, never left to trap inside wasm at encode.
 */
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.ts';
import { checkPrecompiledCharsMap } from '../../src/tokenizer/charsmap.ts';
import { encodeModelProto } from '../../src/tokenizer/proto.ts';
import { NativeSentencePiece } from '../../src/tokenizer/sentencepiece.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { vocabFromLlama2cTokenizer } from '../../src/tokenizer/vocab.ts';
import { precompiledCharsMap, withCharsMap } from '../helpers/charsmap.ts';
import { haveSharedModel } from '../helpers/models.ts';
import { bytesOf, rng, STORIES_BIN } from './load.ts';

const FIELD = 'normalizer_spec.precompiled_charsmap';
const RULES = { A: 'a', '\uFB01': 'fi', 'AB': 'x y' }; // 'ﬁ' ligature; "AB" is longer than "A" and wins
/** Every byte value, as UTF-8 text: what reaches the trie. */
const TEXTS = ['Hello ABBA ﬁsh', 'AAAB \u00e9\u00e8 \u65e5\u672c 🦙', Array.from({ length: 255 }, (_, i) => String.fromCharCode(i + 1)).join(''), ''];

async function formatError(p: Promise<unknown>, field = FIELD): Promise<ModelFormatError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ModelFormatError);
  const e = err as ModelFormatError;
  expect(e.file).toBe('rules.model');
  expect(e.field).toBe(field);
  expect(e.message).toMatch(/get the tokenizer\.model again/);
  return e;
}

function corrupt(blob: Uint8Array, at: number, u32: number): Uint8Array {
  const out = blob.slice();
  new DataView(out.buffer).setUint32(at, u32 >>> 0, true);
  return out;
}

describe.runIf(haveSharedModel('stories260K/tok512.bin'))('precompiled_charsmap', () => {
  const base = encodeModelProto(vocabFromLlama2cTokenizer(bytesOf(STORIES_BIN), 512));
  const rules = precompiledCharsMap(RULES);

  it('well-formed rules load and the native normalizer applies them', async () => {
    checkPrecompiledCharsMap(rules, 'rules.model', FIELD);
    const plain = await Tokenizer.fromModelProto(base, 'plain.model');
    const normalized = await Tokenizer.fromModelProto(withCharsMap(base, rules), 'rules.model');
    try {
      expect(normalized.encode('A cat')).toEqual(plain.encode('a cat'));
      expect(normalized.encode('\uFB01sh')).toEqual(plain.encode('fish'));
      expect(normalized.encode('AB')).toEqual(plain.encode('x y'));
      expect(plain.encode('A cat')).not.toEqual(plain.encode('a cat'));
      for (const t of TEXTS) expect(normalized.encode(t).every((id) => id >= 0 && id < 512)).toBe(true);
    } finally {
      plain.dispose();
      normalized.dispose();
    }
  });

  it('garbage rules are refused at load, before any encode can run them', async () => {
    const r = rng(5);
    for (let seed = 0; seed < 20; seed++) {
      const garbage = Uint8Array.from({ length: 4096 }, () => Math.floor(r() * 256));
      new DataView(garbage.buffer).setUint32(0, 2048, true); // a plausible trie size
      await formatError(Tokenizer.fromModelProto(withCharsMap(base, garbage), 'rules.model'));
    }
  });

  it('each way a read could leave the blob is named', async () => {
    const size = (rules.byteLength - 4) >> 2; // not exact (strings follow), only an upper bound for the cases below
    const cases: [Uint8Array, RegExp][] = [
      [rules.subarray(0, 3), /too short/],
      [corrupt(rules, 0, rules.byteLength), /runs past the end/],
      [corrupt(rules, 0, 4 * 16), /fewer than the 256/],
      [corrupt(rules, 4, 0x7fffff << 10), /root unit/],
      [corrupt(rules, 4, (256 << 10) | 0x100), /root unit/], // the root must not be a leaf
      [corrupt(rules, 4 + 4 * (256 ^ 0x41), ((256 ^ 0x41) ^ (size << 2)) << 10 | 0x41), /links to units/],
      [rules.subarray(0, rules.byteLength - 1), /no NUL-terminated string/], // the last string loses its NUL
    ];
    for (const [blob, message] of cases) {
      const e = await formatError(Tokenizer.fromModelProto(withCharsMap(base, blob), 'rules.model'));
      expect(e.message).toMatch(message);
    }
    // The denormalizer's rules (used when decoding natively) are checked the same way.
    await formatError(Tokenizer.fromModelProto(withCharsMap(base, corrupt(rules, 0, 4 * 16), 5), 'rules.model'), 'denormalizer_spec.precompiled_charsmap');
  });

  it('seeded single-unit corruptions: each is refused, or loads and encodes every byte without a trap', async () => {
    const r = rng(17);
    const units = Math.floor(new DataView(rules.buffer).getUint32(0, true) / 4);
    let refused = 0;
    let loaded = 0;
    for (let i = 0; i < 300; i++) {
      const at = 4 + 4 * Math.floor(r() * units);
      const v = [Math.floor(r() * 2 ** 32), Math.floor(r() * 1024) << 10 | Math.floor(r() * 512), 0x80000000 + Math.floor(r() * 64)][i % 3];
      let tokenizer: Tokenizer;
      try {
        tokenizer = await Tokenizer.fromModelProto(withCharsMap(base, corrupt(rules, at, v)), 'rules.model');
      } catch (e) {
        expect(e).toBeInstanceOf(ModelFormatError);
        refused++;
        continue;
      }
      for (const t of TEXTS) tokenizer.encode(t);
      tokenizer.dispose();
      loaded++;
    }
    expect(refused).toBeGreaterThan(30);
    expect(loaded).toBeGreaterThan(30);
  });

  it('a wasm trap while encoding is a ModelFormatError naming the file, and later loads still work', async () => {
    const plain = await Tokenizer.fromModelProto(base, 'plain.model');
    const before = plain.encode('Hello world');
    plain.dispose();
    // Loaded natively without the checks, garbage rules make SentencePiece read outside wasm memory.
    const r = rng(9);
    let traps = 0;
    for (let seed = 0; seed < 10; seed++) {
      const garbage = Uint8Array.from({ length: 4096 }, () => Math.floor(r() * 256));
      new DataView(garbage.buffer).setUint32(0, 2048, true);
      const unchecked = await NativeSentencePiece.load(withCharsMap(base, garbage), 'rules.model');
      try {
        for (const t of TEXTS) unchecked.encodeIds(t);
      } catch (e) {
        expect(e).toBeInstanceOf(ModelFormatError);
        expect((e as ModelFormatError).file).toBe('rules.model');
        expect((e as Error).cause).toBeInstanceOf(WebAssembly.RuntimeError);
        traps++;
      } finally {
        unchecked.delete();
      }
    }
    expect(traps).toBeGreaterThan(0);
    const fresh = await Tokenizer.fromModelProto(base, 'plain.model');
    expect(fresh.encode('Hello world')).toEqual(before);
    fresh.dispose();
  });
});
