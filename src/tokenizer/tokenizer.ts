/**
 * The Llama tokenizer: SentencePiece BPE with byte fallback. Encoding runs in the real SentencePiece
 * (sentencepiece.ts); decoding follows SentencePiece's decoder rules piece by piece (stream.ts), so generated
 * text can be shown as it arrives.
 */
import { ModelFormatError, TokenizerDisposedError } from '../errors.ts';
import { readModelProto } from './proto.ts';
import { NativeSentencePiece } from './sentencepiece.ts';
import { StreamDecoder, type TokenDecoder } from './stream.ts';
import type { Vocab } from './vocab.ts';

export type { TokenDecoder } from './stream.ts';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;

  private constructor(
    readonly vocab: Vocab,
    private native: NativeSentencePiece | null,
    private readonly addDummyPrefix: boolean,
    private readonly unkSurface: string,
  ) {
    this.vocabSize = vocab.pieces.length;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
  }

  /** A tokenizer from a serialized SentencePiece ModelProto (tokenizer.model, or proto.ts's encodeModelProto);
   *  `name` names the file in errors. */
  static async fromModelProto(bytes: Uint8Array, name = 'tokenizer.model'): Promise<Tokenizer> {
    const info = readModelProto(bytes, name);
    if (info.modelType !== 2) {
      throw new ModelFormatError(name, `SentencePiece model type ${info.modelType} is not BPE (2); Llama tokenizers are BPE, check that this is the model's tokenizer`, 'trainer_spec.model_type');
    }
    const native = await NativeSentencePiece.load(bytes, name);
    return new Tokenizer(info.vocab, native, info.addDummyPrefix, info.unkSurface);
  }

  /** Token ids of `text`, without BOS. */
  encode(text: string): number[] {
    if (!this.native) throw new TokenizerDisposedError();
    // Lone UTF-16 surrogates have no UTF-8 form; they become U+FFFD as TextEncoder would make them.
    return this.native.encodeIds(text.replace(LONE_SURROGATE, '\uFFFD'));
  }

  /**
   * Frees the native SentencePiece model (wasm memory that garbage collection never reclaims). encode() then throws
   * TokenizerDisposedError; decoding needs only the vocab and keeps working. Calling it again does nothing.
   */
  dispose(): void {
    this.native?.delete();
    this.native = null;
  }

  /**
   * Text of `ids`, by SentencePiece's decoding rules (stream.ts, checked against the native decoder in the tests).
   * The native DecodeIds is not used: embind hands its std::string to JS by decoding each NUL-separated segment
   * with a BOM-stripping TextDecoder, which loses a U+FEFF at the start or after a NUL.
   */
  decode(ids: number[]): string {
    const decoder = this.createDecoder();
    let text = '';
    for (const id of ids) text += decoder.push(id);
    return text + decoder.flush();
  }

  /**
   * Streaming detokenization: text for each pushed id (leading-space and byte-fallback aware: bytes of a
   * multi-byte UTF-8 char split across tokens come out once complete). The pushes and the final flush
   * concatenate to decode(ids).
   */
  createDecoder(options: { continuation?: boolean } = {}): TokenDecoder {
    return new StreamDecoder(this.vocab, this.addDummyPrefix, this.unkSurface, (id) => this.checkId(id), options.continuation);
  }

  piece(id: number): string {
    this.checkId(id);
    return this.vocab.pieces[id];
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} is outside the ${this.vocabSize}-token vocab`);
    }
  }
}
