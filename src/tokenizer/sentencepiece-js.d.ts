/**
 * The parts of sentencepiece-js (SentencePiece compiled to wasm with Emscripten and embind) that
 * sentencepiece.ts uses. The package ships no types.
 */
declare module 'sentencepiece-js' {
  /** An embind object: C++ memory the caller frees with delete(). */
  interface EmbindObject {
    delete(): void;
  }
  interface EmbindVector<T> extends EmbindObject {
    size(): number;
    get(i: number): T;
  }
  interface AbslStringView extends EmbindObject {}
  interface StringView extends EmbindObject {
    getView(): AbslStringView;
  }
  interface Status extends EmbindObject {
    ToString(): string;
  }
  interface NativeProcessor extends EmbindObject {
    Load(filename: AbslStringView): Status;
    EncodeAsIds(text: AbslStringView): EmbindVector<number>;
    EncodeAsPieces(text: AbslStringView): EmbindVector<string>;
    DecodeIds(ids: EmbindVector<number>): string;
  }
  /** The Emscripten module instance. */
  export interface SentencePieceRuntime {
    FS: { writeFile(path: string, data: Uint8Array): void; unlink(path: string): void };
    StringView: new (s: string) => StringView;
    SentencePieceProcessor: new () => NativeProcessor;
    vecFromJSArray(ids: number[]): EmbindVector<number>;
  }
  export class SentencePieceProcessor {
    /** Instantiates the runtime into `sentencepiece`, then reads `url` with Node's fs and loads it. */
    load(url: string): Promise<void>;
    sentencepiece?: SentencePieceRuntime;
  }
  const index: { SentencePieceProcessor: typeof SentencePieceProcessor };
  export default index;
}
