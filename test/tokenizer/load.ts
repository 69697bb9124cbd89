/** The sample tokenizers, each loaded once per test file through the same paths the CLI uses. */
import { readFileSync } from 'node:fs';
import { fileSource } from '../../src/formats/node-source.ts';
import { readGguf } from '../../src/formats/gguf.ts';
import { vocabFromGguf, type Vocab } from '../../src/tokenizer/vocab.ts';
import { sharedModel } from '../helpers/models.ts';

export const LLAMA2_MODEL = sharedModel('llama2-tokenizer/tokenizer.model');
export const LLAMA2_BIN = sharedModel('llama2-tokenizer/tokenizer.bin');
export const LLAMA2_GGUF = sharedModel('llama2-tokenizer/ggml-vocab-llama-spm.gguf');
export const STORIES_BIN = sharedModel('stories260K/tok512.bin');
export const STORIES_GGUF = sharedModel('stories260K/stories260Ktok512.gguf');

export function bytesOf(file: string): Uint8Array {
  return new Uint8Array(readFileSync(file));
}

export async function ggufVocab(file: string): Promise<Vocab> {
  const source = await fileSource(file);
  try {
    return vocabFromGguf((await readGguf(source)).metadata, source.name);
  } finally {
    await source.close();
  }
}

export { rng } from '../helpers/random.ts';
