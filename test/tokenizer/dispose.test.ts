/**
 * Tokenizer.dispose() frees the native SentencePiece model: loading and disposing many times keeps the wasm heap
 * where it was (each Llama 2 load without dispose holds about 3.3 MB that garbage collection never reclaims).
 */
import { describe, expect, it } from 'vitest';
import { TokenizerDisposedError } from '../../src/errors.ts';
import { sentencePieceRuntime } from '../../src/tokenizer/sentencepiece.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { haveSharedModel } from '../helpers/models.ts';
import { bytesOf, LLAMA2_MODEL } from './load.ts';

/** Bytes of wasm linear memory: it only grows, so a leak shows as growth. */
async function heapBytes(): Promise<number> {
  const rt = (await sentencePieceRuntime()) as unknown as { HEAP8: Int8Array };
  return rt.HEAP8.buffer.byteLength;
}

describe.runIf(haveSharedModel('llama2-tokenizer/tokenizer.model'))('Tokenizer.dispose', () => {
  const model = bytesOf(LLAMA2_MODEL);

  it('load and dispose 40 times: the wasm heap does not grow past the first load', async () => {
    const first = await Tokenizer.fromModelProto(model, 'tokenizer.model');
    first.encode('Hello world');
    first.dispose();
    const before = await heapBytes();
    for (let i = 0; i < 40; i++) {
      const t = await Tokenizer.fromModelProto(model, 'tokenizer.model');
      expect(t.encode('Hello world')).toEqual([15043, 3186]);
      t.dispose();
    }
    // Without dispose the same loop grows the heap by about 130 MB.
    expect((await heapBytes()) - before).toBeLessThanOrEqual(4 << 20);
  });

  it('encode after dispose is a TokenizerDisposedError; decode needs only the vocab; dispose twice is harmless', async () => {
    const t = await Tokenizer.fromModelProto(model, 'tokenizer.model');
    t.dispose();
    expect(() => t.encode('Hello')).toThrow(TokenizerDisposedError);
    expect(t.decode([15043, 3186])).toBe('Hello world');
    t.dispose();
    const again = await Tokenizer.fromModelProto(model, 'tokenizer.model');
    expect(again.encode('Hello world')).toEqual([15043, 3186]);
    again.dispose();
  });
});
