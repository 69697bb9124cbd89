/**
 * Node: a tokenizer from a file on disk, whichever form the model came with (SentencePiece tokenizer.model,
 * llama2.c tokenizer.bin, or the vocab inside a GGUF), or from a package directory's tokenizer.model.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ModelFormatError } from '../errors.ts';
import { readGguf } from '../formats/gguf.ts';
import { fileSource } from '../formats/node-source.ts';
import { readAll } from '../formats/source.ts';
import { encodeModelProto } from './proto.ts';
import { Tokenizer } from './tokenizer.ts';
import { countLlama2cTokens, vocabFromGguf, vocabFromLlama2cTokenizer } from './vocab.ts';

/** Tokenizer files are a few MB at most (Llama 2's is 0.5 MB); anything far larger is the wrong file. */
const MAX_TOKENIZER_BYTES = 64 << 20;
const GGUF_MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"

export async function loadTokenizerFile(file: string): Promise<Tokenizer> {
  if ((await stat(file)).isDirectory()) {
    const dir = file;
    file = path.join(dir, 'tokenizer.model');
    if (!(await stat(file).catch(() => undefined))?.isFile()) {
      throw new ModelFormatError(path.basename(dir), 'package directory has no tokenizer.model; give the tokenizer file itself (tokenizer.model, tokenizer.bin or .gguf) or rebuild the package');
    }
  }
  const source = await fileSource(file);
  try {
    const head = await source.read(0, Math.min(4, source.size));
    if (GGUF_MAGIC.every((b, i) => head[i] === b)) {
      // Only the header is read: a GGUF holding a whole model may be gigabytes.
      const gguf = await readGguf(source);
      return await Tokenizer.fromModelProto(encodeModelProto(vocabFromGguf(gguf.metadata, source.name)), source.name);
    }
    const bytes = await readAll(source, MAX_TOKENIZER_BYTES);
    if (file.endsWith('.bin')) {
      const vocab = vocabFromLlama2cTokenizer(bytes, countLlama2cTokens(bytes, source.name), source.name);
      return await Tokenizer.fromModelProto(encodeModelProto(vocab), source.name);
    }
    return await Tokenizer.fromModelProto(bytes, source.name);
  } finally {
    await source.close();
  }
}
