/**
 * The real SentencePiece (sentencepiece-js: the C++ library compiled to wasm, wasm inlined in its JS), loaded
 * from bytes in Node, in a browser page and in a browser worker.
 *
 * The package's only loader, `SentencePieceProcessor.load(path)`, instantiates the wasm runtime and then reads the
 * model with Node's `fs`, which browsers lack. Called with no path, it instantiates the runtime, stores it on the
 * processor as `sentencepiece`, and then rejects at the `fs` read, in Node and browsers alike. From that runtime
 * this module writes model bytes into Emscripten's in-memory file system and loads them through the native
 * `SentencePieceProcessor.Load`, as the package's loader would. One runtime serves every tokenizer.
 */
import type { SentencePieceRuntime } from 'sentencepiece-js';
import { ModelFormatError } from '../errors.ts';

type NativeProcessor = InstanceType<SentencePieceRuntime['SentencePieceProcessor']>;

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';

let runtime: Promise<SentencePieceRuntime> | undefined;

/** The shared SentencePiece wasm runtime, instantiated on first use. */
export function sentencePieceRuntime(): Promise<SentencePieceRuntime> {
  runtime ??= createRuntime().catch((err: unknown) => {
    runtime = undefined;
    throw err;
  });
  return runtime;
}

async function createRuntime(): Promise<SentencePieceRuntime> {
  const mod = await importWithDocumentShim();
  const Processor = (mod.default?.SentencePieceProcessor ?? (mod as unknown as typeof mod.default).SentencePieceProcessor)!;
  // Emscripten's Node glue installs process-wide handlers that rethrow every uncaught exception and unhandled
  // rejection; they are removed again so loading a tokenizer does not change how the host process fails.
  const before = isNode ? { ue: process.listeners('uncaughtException'), ur: process.listeners('unhandledRejection') } : undefined;
  const bootstrap = new Processor();
  let loadError: unknown;
  try {
    await bootstrap.load(undefined as unknown as string);
  } catch (err) {
    loadError = err; // expected: the fs read after the runtime is up (see the header comment)
  }
  if (before) {
    for (const l of process.listeners('uncaughtException')) if (!before.ue.includes(l)) process.off('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!before.ur.includes(l)) process.off('unhandledRejection', l);
  }
  if (!bootstrap.sentencepiece) {
    throw new Error(`the SentencePiece wasm runtime failed to start: ${String(loadError)}`, { cause: loadError });
  }
  return bootstrap.sentencepiece;
}

/**
 * In a browser worker the package's top level computes its script URL from `document` or, lacking one, from
 * Node's `__filename`, and throws. A stand-in `document` exists only while the module is evaluated.
 */
async function importWithDocumentShim(): Promise<typeof import('sentencepiece-js')> {
  const g = globalThis as { document?: unknown; location?: { href: string } };
  const shim = !isNode && typeof g.document === 'undefined';
  if (shim) {
    Object.defineProperty(g, 'document', {
      value: { currentScript: null, baseURI: g.location?.href ?? '' },
      configurable: true,
      writable: true,
    });
  }
  try {
    return await import('sentencepiece-js');
  } finally {
    if (shim) delete g.document;
  }
}

let nextFileId = 0;

/** One loaded SentencePiece model in the shared runtime. */
export class NativeSentencePiece {
  private constructor(
    private readonly rt: SentencePieceRuntime,
    private readonly processor: NativeProcessor,
    private readonly file: string,
  ) {}

  /** Loads a serialized ModelProto; `file` names it in errors. Validate the bytes first (proto.ts): the native
   *  loader reports a bad model only as a status string. */
  static async load(bytes: Uint8Array, file: string): Promise<NativeSentencePiece> {
    const rt = await sentencePieceRuntime();
    const path = `/tokenizer-${nextFileId++}.model`;
    rt.FS.writeFile(path, bytes);
    const processor = new rt.SentencePieceProcessor();
    let message: string;
    try {
      message = withView(rt, path, (view) => {
        const status = processor.Load(view);
        try {
          return status.ToString();
        } finally {
          status.delete();
        }
      });
    } finally {
      rt.FS.unlink(path); // Load has parsed the file; the model lives in the processor now
    }
    if (message !== 'OK') {
      processor.delete();
      throw new ModelFormatError(file, `SentencePiece rejected the vocab: ${message}; the tokenizer file is corrupt or is not a Llama tokenizer, get the model's tokenizer again`);
    }
    return new NativeSentencePiece(rt, processor, file);
  }

  encodeIds(text: string): number[] {
    return this.guarded(() => withView(this.rt, text, (view) => {
      const vec = this.processor.EncodeAsIds(view);
      try {
        const ids = new Array<number>(vec.size());
        for (let i = 0; i < ids.length; i++) ids[i] = vec.get(i);
        return ids;
      } finally {
        vec.delete();
      }
    }));
  }

  encodePieces(text: string): string[] {
    return this.guarded(() => withView(this.rt, text, (view) => {
      const vec = this.processor.EncodeAsPieces(view);
      try {
        const pieces = new Array<string>(vec.size());
        for (let i = 0; i < pieces.length; i++) pieces[i] = vec.get(i);
        return pieces;
      } finally {
        vec.delete();
      }
    }));
  }

  decodeIds(ids: number[]): string {
    const vec = this.rt.vecFromJSArray(ids);
    try {
      return this.processor.DecodeIds(vec);
    } finally {
      vec.delete();
    }
  }

  /** Frees the native model (its pieces, tries and normalizer: about 3 MB of wasm heap for Llama 2's). */
  delete(): void {
    this.processor.delete();
  }

  /**
   * A wasm trap inside SentencePiece means the model held something load-time checks (proto.ts, charsmap.ts) did
   * not catch; it is reported against the model file rather than as a bare RuntimeError.
   */
  private guarded<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError) {
        throw new ModelFormatError(this.file, `SentencePiece failed while encoding with this model (${err.message}); the tokenizer.model is corrupt, get it again`, undefined, { cause: err });
      }
      throw err;
    }
  }
}

/** Runs `f` on an absl::string_view of `s` (UTF-8 in wasm memory), freeing both afterwards. */
function withView<T>(rt: SentencePieceRuntime, s: string, f: (view: ReturnType<InstanceType<SentencePieceRuntime['StringView']>['getView']>) => T): T {
  const sv = new rt.StringView(s);
  const view = sv.getView();
  try {
    return f(view);
  } finally {
    view.delete();
    sv.delete();
  }
}
