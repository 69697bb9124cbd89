/** Bad tokenizer files: each is a ModelFormatError that names the file. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.ts';
import { loadTokenizerFile } from '../../src/tokenizer/node.ts';
import { encodeModelProto } from '../../src/tokenizer/proto.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { PieceType, vocabFromGguf, vocabFromLlama2cTokenizer } from '../../src/tokenizer/vocab.ts';
import { LLAMA2_GGUF, LLAMA2_MODEL, STORIES_BIN, bytesOf, rng } from './load.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-tokenizer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tempFile(name: string, bytes: Uint8Array | string): string {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

function garbage(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

async function expectFormatError(promise: Promise<unknown>, file: string): Promise<ModelFormatError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelFormatError);
  const e = err as ModelFormatError;
  expect(e.file).toBe(file);
  expect(e.message).toContain(file);
  return e;
}

describe('bad tokenizer files', () => {
  it('rejects a truncated or garbage tokenizer.model', async () => {
    const model = bytesOf(LLAMA2_MODEL);
    const e = await expectFormatError(loadTokenizerFile(tempFile('cut.model', model.subarray(0, 10_007))), 'cut.model');
    expect(e.message).toMatch(/truncated/);
    await expectFormatError(loadTokenizerFile(tempFile('noise.model', garbage(4096, 1))), 'noise.model');
    await expectFormatError(loadTokenizerFile(tempFile('text.model', 'this is not a tokenizer\n')), 'text.model');
    await expectFormatError(loadTokenizerFile(tempFile('empty.model', new Uint8Array(0))), 'empty.model');
    for (let seed = 2; seed < 40; seed++) await expectFormatError(Tokenizer.fromModelProto(garbage(64 + seed * 37, seed), 'bytes.model'), 'bytes.model');
  });

  it('rejects a model that parses but that SentencePiece refuses', async () => {
    // byte_fallback with a single byte piece: SentencePiece requires all 256.
    const bin = bytesOf(STORIES_BIN);
    const vocab = vocabFromLlama2cTokenizer(bin, 512);
    const types = vocab.types.map((t, i) => (t === PieceType.BYTE && i !== 3 ? PieceType.NORMAL : t));
    const e = await expectFormatError(Tokenizer.fromModelProto(encodeModelProto({ ...vocab, types }), 'odd.model'), 'odd.model');
    expect(e.message).toMatch(/256 byte pieces/);
  });

  it('rejects a package directory without tokenizer.model', async () => {
    const pkg = path.join(dir, 'empty-package');
    mkdirSync(pkg);
    const e = await expectFormatError(loadTokenizerFile(pkg), 'empty-package');
    expect(e.message).toMatch(/no tokenizer\.model/);
  });

  it('rejects a truncated or garbage llama2.c tokenizer.bin', async () => {
    const bin = bytesOf(STORIES_BIN);
    const e = await expectFormatError(loadTokenizerFile(tempFile('cut.bin', bin.subarray(0, 3001))), 'cut.bin');
    expect(e.message).toMatch(/truncated/);
    await expectFormatError(loadTokenizerFile(tempFile('noise.bin', garbage(4096, 3))), 'noise.bin');
    await expectFormatError(loadTokenizerFile(tempFile('tiny.bin', new Uint8Array(2))), 'tiny.bin');
    // A vocab size that does not match the file.
    expect(() => vocabFromLlama2cTokenizer(bin, 500, 'tok512.bin')).toThrow(/holds 512 tokens/);
    expect(() => vocabFromLlama2cTokenizer(bin, 513, 'tok512.bin')).toThrow(ModelFormatError);
  });

  it('rejects a truncated GGUF and one without a vocab', async () => {
    const gguf = bytesOf(LLAMA2_GGUF);
    await expectFormatError(loadTokenizerFile(tempFile('cut.gguf', gguf.subarray(0, 100_000))), 'cut.gguf');
    const e = (() => {
      try {
        vocabFromGguf(new Map<string, unknown>([['general.architecture', 'llama']]), 'weights-only.gguf');
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ModelFormatError);
    expect((e as ModelFormatError).message).toMatch(/^weights-only\.gguf \(tokenizer\.ggml\.tokens\)/);
    expect(() => vocabFromGguf(new Map<string, unknown>([['tokenizer.ggml.model', 'gpt2'], ['tokenizer.ggml.tokens', ['a']]]), 'bpe.gguf')).toThrow(/not a SentencePiece/);
  });
});
