/**
 * The check a converter runs on the tokenizer.model it is about to write: the package's tokenizer is loaded the
 * way `generate` and the engine load it, exercised, and compared with the model it serves, so a package whose
 * tokenizer would fail later is refused while the source files are still at hand.
 */
import { ModelFormatError } from '../errors.ts';
import { Tokenizer } from './tokenizer.ts';

/** Every printable ASCII character, runs of spaces, accents, CJK, an emoji (byte fallback) and control characters. */
const PROBE = `Hello world!  héllo, ñ 日本語 🦙\n\t${Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('')}`;

/** Throws a ModelFormatError naming `file` unless `bytes` load as a tokenizer for a `vocabSize`-row embedding. */
export async function checkPackageTokenizer(bytes: Uint8Array, file: string, vocabSize: number): Promise<void> {
  const tokenizer = await Tokenizer.fromModelProto(bytes, file);
  try {
    if (tokenizer.vocabSize !== vocabSize) {
      throw new ModelFormatError(file, `has ${tokenizer.vocabSize} pieces but the model's embedding has ${vocabSize} rows; pass the tokenizer that belongs to this model (--tokenizer)`, 'vocab_size');
    }
    tokenizer.encode(PROBE);
    // Every id the model can generate must decode.
    tokenizer.decode(Array.from({ length: vocabSize }, (_, id) => id));
  } finally {
    tokenizer.dispose();
  }
}
