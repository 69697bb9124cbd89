/**
 * Every failure the library reports is a subclass of LlamaWebGpuError, and every class is in this file. Each message
 * says what happened, names the file, tensor, field or op involved, and says what to do next. Match on `err.code`
 * (stable across versions and across the worker boundary) or on the class: a worker engine rethrows the class the
 * engine threw, with its fields (errorFromCode). The CLI's usage errors (src/cli/args.ts) are not library errors.
 */

/** Every `code` a LlamaWebGpuError can carry. Codes with a class of their own are the keys of CLASS_OF_CODE below. */
export type ErrorCode =
  | 'WEBGPU_UNAVAILABLE'
  | 'GPU_LIMIT'
  | 'GPU_OUT_OF_MEMORY'
  | 'DEVICE_LOST'
  | 'MODEL_DOES_NOT_FIT'
  | 'KERNEL_SHAPE'
  | 'MODEL_FORMAT'
  | 'MODEL_NOT_INSTALLED'
  | 'TOKENIZER_DISPOSED'
  | 'STORAGE'
  | 'STORAGE_QUOTA'
  | 'PACKAGE_VERSION'
  | 'DOWNLOAD'
  | 'SHARD_INTEGRITY'
  | 'MODEL_INTEGRITY'
  | 'CONVERT_OPTIONS'
  | 'SAMPLING_PARAMS'
  | 'INVALID_OPTIONS'
  | 'JSON_SCHEMA'
  | 'CONTEXT_OVERFLOW'
  | 'CHAT_FORMAT'
  | 'ENGINE_UNLOADED'
  | 'WORKER_TERMINATED'
  | 'BROWSER_SETUP'
  // Codes without a class of their own (thrown as LlamaWebGpuError):
  /** The engine worker crashed or its script failed to load. */
  | 'WORKER_ERROR'
  /** A worker got a request before its model loaded, or a second model. */
  | 'ENGINE_NOT_LOADED'
  | 'ENGINE_ALREADY_LOADED'
  /** The store worker was asked to convert no files. */
  | 'NO_FILES'
  /** generateIds() got no prompt tokens, or a token id outside the vocabulary. */
  | 'EMPTY_PROMPT'
  | 'BAD_TOKEN'
  /** Structured output: the vocabulary cannot spell JSON, or a sampled token broke the mask (a bug: report it). */
  | 'JSON_VOCAB'
  | 'JSON_MASK'
  /** A WebGPU validation error in a GPU call the library checks. */
  | 'GPU_VALIDATION'
  /** The CLI: a folder that is not a model package, or an error a benchmark page reported without a code. */
  | 'NOT_A_PACKAGE'
  | 'BROWSER';

export class LlamaWebGpuError extends Error {
  /** Stable machine-readable code, e.g. "KERNEL_SHAPE". */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The base of a class whose errors carry a message only. */
function messageError(code: ErrorCode): new (message: string, options?: { cause?: unknown }) => LlamaWebGpuError {
  return class extends LlamaWebGpuError {
    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, options);
    }
  };
}

/** The base of a class whose errors name a file (`file`), prefixed to the message. */
function fileError(code: ErrorCode): new (file: string, message: string) => LlamaWebGpuError & { readonly file: string } {
  return class extends LlamaWebGpuError {
    readonly file: string;
    constructor(file: string, message: string) {
      super(code, `${file}: ${message}`);
      this.file = file;
    }
  };
}

/** No WebGPU adapter could be obtained (browser without WebGPU, or no Vulkan driver in Node). */
export class WebGpuUnavailableError extends messageError('WEBGPU_UNAVAILABLE') {}

/** The adapter lacks a limit or feature that a model or kernel needs. */
export class GpuLimitError extends messageError('GPU_LIMIT') {}

/** A model's weights, activations or KV cache exceed what the GPU allows (see checkFit's reasons). */
export class ModelDoesNotFitError extends LlamaWebGpuError {
  readonly modelId: string;
  readonly reasons: string[];
  constructor(modelId: string, reasons: string[]) {
    super('MODEL_DOES_NOT_FIT', `Model "${modelId}" does not fit this GPU: ${reasons.join(' ')}`);
    this.modelId = modelId;
    this.reasons = reasons;
  }
}

/** A kernel was asked to handle a shape or dtype it cannot; raised when the op is built, never at dispatch. */
export class KernelShapeError extends LlamaWebGpuError {
  readonly op: string;
  constructor(op: string, message: string) {
    super('KERNEL_SHAPE', `${op}: ${message}`);
    this.op = op;
  }
}

/** A model file or package is malformed. `file` names it; `field` names the header field or tensor. */
export class ModelFormatError extends LlamaWebGpuError {
  readonly file: string;
  readonly field?: string;
  constructor(file: string, message: string, field?: string, options?: { cause?: unknown }) {
    super('MODEL_FORMAT', `${file}${field ? ` (${field})` : ''}: ${message}`, options);
    this.file = file;
    this.field = field;
  }
}

/** A Tokenizer was used after dispose() freed its native memory (Engine.unload() disposes the engine's). */
export class TokenizerDisposedError extends LlamaWebGpuError {
  constructor() {
    super('TOKENIZER_DISPOSED', 'The tokenizer was disposed and its memory freed; load it again (Tokenizer.fromModelProto) to use it.');
  }
}

/** Model storage failed: a bad model id or file name, a stored file that is missing, or an incomplete commit. */
export class StorageError extends LlamaWebGpuError {
  readonly modelId: string;
  constructor(modelId: string, message: string, options?: { cause?: unknown }) {
    super('STORAGE', `model "${modelId}": ${message}`, options);
    this.modelId = modelId;
  }
}

/**
 * The browser's storage quota cannot hold the model. Raised before anything is downloaded when
 * navigator.storage.estimate() shows the shortfall; otherwise when the store refuses a write, after removing what
 * was stored.
 */
export class StorageQuotaError extends LlamaWebGpuError {
  readonly neededBytes: number;
  /** Bytes the browser reported free, or, when a write was refused, the bytes stored before it. */
  readonly availableBytes: number;
  constructor(message: string, neededBytes: number, availableBytes: number) {
    super('STORAGE_QUOTA', message);
    this.neededBytes = neededBytes;
    this.availableBytes = availableBytes;
  }
}

/** A model package was written by a newer llama-webgpu (formatVersion) or is not a llama-webgpu package at all. */
export class PackageVersionError extends fileError('PACKAGE_VERSION') {}

/** A file of a model package could not be downloaded (HTTP status, the connection failed, or it stalled). */
export class DownloadError extends LlamaWebGpuError {
  readonly url: string;
  /** HTTP status, or 0 when no response arrived. */
  readonly status: number;
  constructor(url: string, status: number, message: string, options?: { cause?: unknown }) {
    super('DOWNLOAD', message, options);
    this.url = url;
    this.status = status;
  }
}

/** A downloaded shard's sha256 or size did not match the manifest, even after fetching it again. */
export class ShardIntegrityError extends fileError('SHARD_INTEGRITY') {}

/**
 * A stored file of an installed (or about to be committed) model does not hash to its manifest's sha256: the disk
 * or browser storage changed it, or another writer replaced it. Names the model and file; the fix is to reinstall.
 */
export class ModelIntegrityError extends LlamaWebGpuError {
  readonly modelId: string;
  readonly file: string;
  constructor(modelId: string, file: string, message: string) {
    super('MODEL_INTEGRITY', `model "${modelId}" ${file}: ${message}`);
    this.modelId = modelId;
    this.file = file;
  }
}

/**
 * The GPU device was lost (driver reset, GPU process crash, device.destroy(), the browser reclaiming it) while a
 * request ran. The engine opens a new device and reloads the model from the store on its next request.
 */
export class DeviceLostError extends LlamaWebGpuError {
  readonly modelId: string;
  /** GPUDeviceLostInfo.reason: 'destroyed' or 'unknown'. */
  readonly reason: string;
  constructor(modelId: string, reason: string, detail: string) {
    super(
      'DEVICE_LOST',
      `The GPU device was lost while model "${modelId}" was in use (${reason}${detail ? `: ${detail}` : ''}). ` +
        'Send the request again: the engine opens a new device and reloads the model from the store first.',
    );
    this.modelId = modelId;
    this.reason = reason;
  }
}

/** The GPU could not allocate a buffer (weights, KV cache or activations). */
export class GpuOutOfMemoryError extends messageError('GPU_OUT_OF_MEMORY') {}

/** A conversion was asked for something impossible (e.g. a shard size smaller than one row of a tensor). */
export class ConvertOptionsError extends messageError('CONVERT_OPTIONS') {}

/** Sampling options out of range (a negative temperature, top-p outside (0, 1], a bias for a token id not in the vocabulary...). */
export class SamplingParamsError extends messageError('SAMPLING_PARAMS') {}

/**
 * An argument of the public API (createEngine options, generate options, a chat completion request) has the wrong
 * type or is out of range. `option` names it as the caller wrote it; the message says what is valid.
 */
export class InvalidOptionsError extends LlamaWebGpuError {
  readonly option: string;
  constructor(option: string, message: string) {
    super('INVALID_OPTIONS', `${option}: ${message}`);
    this.option = option;
  }
}

/**
 * A JSON schema given for structured output (jsonSchema, response_format) uses a keyword the engine cannot
 * enforce, is malformed, or allows no value. `keyword` names it and `path` is where it is (a JSON pointer).
 */
export class JsonSchemaError extends LlamaWebGpuError {
  readonly keyword: string;
  readonly path: string;
  constructor(keyword: string, path: string, message: string) {
    super('JSON_SCHEMA', `JSON schema at ${path}: "${keyword}" ${message}`);
    this.keyword = keyword;
    this.path = path;
  }
}

/** No complete package of the model is in the store (never installed, or its install did not finish). */
export class ModelNotInstalledError extends LlamaWebGpuError {
  readonly modelId: string;
  constructor(modelId: string) {
    super('MODEL_NOT_INSTALLED', `No complete model "${modelId}" is installed. Install it first (installFromUrl or the converter).`);
    this.modelId = modelId;
  }
}

/** A prompt, or a conversation with room for its reply, is longer than the loaded context. */
export class ContextOverflowError extends LlamaWebGpuError {
  readonly promptTokens: number;
  readonly contextLength: number;
  /** The room a chat's reply was to keep (see fitConversation); 0 for a plain prompt. */
  readonly replyTokens: number;
  constructor(promptTokens: number, contextLength: number, replyTokens = 0) {
    super(
      'CONTEXT_OVERFLOW',
      replyTokens > 0 && promptTokens <= contextLength
        ? `The conversation is ${promptTokens} tokens and leaves no room for a reply of ${replyTokens} in a context of ${contextLength}. ` +
            "Let the oldest turns drop (context_overflow: 'drop_oldest'), lower max_tokens, or load the model with a longer context."
        : `The prompt is ${promptTokens} tokens but the context holds ${contextLength}. ` +
            'Shorten the prompt (or the conversation history), or load the model with a longer context.',
    );
    this.promptTokens = promptTokens;
    this.contextLength = contextLength;
    this.replyTokens = replyTokens;
  }
}

/** Chat messages that the Llama 2 chat format cannot express (roles out of order, no final user message). */
export class ChatFormatError extends messageError('CHAT_FORMAT') {}

/** The engine was unloaded (ENGINE_UNLOADED); WorkerEngineTerminatedError is one too. */
export class EngineUnloadedError extends LlamaWebGpuError {
  constructor(
    message = 'The engine was unloaded; create a new one with createEngine().',
    code: 'ENGINE_UNLOADED' | 'WORKER_TERMINATED' = 'ENGINE_UNLOADED',
  ) {
    super(code, message);
  }
}

/** The worker engine was unloaded (code ENGINE_UNLOADED, as Engine's) or its worker terminated (WORKER_TERMINATED). */
export class WorkerEngineTerminatedError extends EngineUnloadedError {
  constructor(unloaded = false) {
    super(
      unloaded
        ? 'The engine was unloaded; create a new one with createWorkerEngine().'
        : 'The engine worker was terminated; create a new engine with createWorkerEngine().',
      unloaded ? 'ENGINE_UNLOADED' : 'WORKER_TERMINATED',
    );
  }
}

/** The CLI's Chromium, or its lavapipe build, is not installed where the launcher looks. */
export class BrowserSetupError extends messageError('BROWSER_SETUP') {}

/** The fields of the classes above, as plain data that survives postMessage (errorDetails, errorFromCode). */
export interface ErrorDetails {
  modelId?: string;
  file?: string;
  field?: string;
  op?: string;
  reasons?: string[];
  neededBytes?: number;
  availableBytes?: number;
  url?: string;
  status?: number;
  reason?: string;
  option?: string;
  keyword?: string;
  path?: string;
  promptTokens?: number;
  contextLength?: number;
  replyTokens?: number;
}

const DETAIL_KEYS = [
  'modelId', 'file', 'field', 'op', 'reasons', 'neededBytes', 'availableBytes', 'url', 'status', 'reason', 'option',
  'keyword', 'path', 'promptTokens', 'contextLength', 'replyTokens',
] as const satisfies readonly (keyof ErrorDetails)[];

/** The class of each code that has one, built from its fields (the message is replaced by errorFromCode). */
const CLASS_OF_CODE: { [C in ErrorCode]: ((d: ErrorDetails) => LlamaWebGpuError) | null } = {
  WEBGPU_UNAVAILABLE: () => new WebGpuUnavailableError(''),
  GPU_LIMIT: () => new GpuLimitError(''),
  GPU_OUT_OF_MEMORY: () => new GpuOutOfMemoryError(''),
  DEVICE_LOST: (d) => new DeviceLostError(d.modelId ?? '', d.reason ?? 'unknown', ''),
  MODEL_DOES_NOT_FIT: (d) => new ModelDoesNotFitError(d.modelId ?? '', d.reasons ?? []),
  KERNEL_SHAPE: (d) => new KernelShapeError(d.op ?? '', ''),
  MODEL_FORMAT: (d) => new ModelFormatError(d.file ?? '', '', d.field),
  MODEL_NOT_INSTALLED: (d) => new ModelNotInstalledError(d.modelId ?? ''),
  TOKENIZER_DISPOSED: () => new TokenizerDisposedError(),
  STORAGE: (d) => new StorageError(d.modelId ?? '', ''),
  STORAGE_QUOTA: (d) => new StorageQuotaError('', d.neededBytes ?? 0, d.availableBytes ?? 0),
  PACKAGE_VERSION: (d) => new PackageVersionError(d.file ?? '', ''),
  DOWNLOAD: (d) => new DownloadError(d.url ?? '', d.status ?? 0, ''),
  SHARD_INTEGRITY: (d) => new ShardIntegrityError(d.file ?? '', ''),
  MODEL_INTEGRITY: (d) => new ModelIntegrityError(d.modelId ?? '', d.file ?? '', ''),
  CONVERT_OPTIONS: () => new ConvertOptionsError(''),
  SAMPLING_PARAMS: () => new SamplingParamsError(''),
  INVALID_OPTIONS: (d) => new InvalidOptionsError(d.option ?? '', ''),
  JSON_SCHEMA: (d) => new JsonSchemaError(d.keyword ?? '', d.path ?? '', ''),
  CONTEXT_OVERFLOW: (d) => new ContextOverflowError(d.promptTokens ?? 0, d.contextLength ?? 0, d.replyTokens),
  CHAT_FORMAT: () => new ChatFormatError(''),
  ENGINE_UNLOADED: () => new EngineUnloadedError(),
  WORKER_TERMINATED: () => new WorkerEngineTerminatedError(),
  BROWSER_SETUP: () => new BrowserSetupError(''),
  WORKER_ERROR: null,
  ENGINE_NOT_LOADED: null,
  ENGINE_ALREADY_LOADED: null,
  NO_FILES: null,
  EMPTY_PROMPT: null,
  BAD_TOKEN: null,
  JSON_VOCAB: null,
  JSON_MASK: null,
  GPU_VALIDATION: null,
  NOT_A_PACKAGE: null,
  BROWSER: null,
};

/** Every error code, in the catalogue's order. */
export const ERROR_CODES = Object.keys(CLASS_OF_CODE) as ErrorCode[];

/** The fields of `e` that errorFromCode gives back: the ErrorDetails keys it has, as plain data. */
export function errorDetails(e: LlamaWebGpuError): ErrorDetails {
  const d: Record<string, unknown> = {};
  for (const k of DETAIL_KEYS) {
    const v = (e as unknown as Record<string, unknown>)[k];
    if (typeof v === 'string' || typeof v === 'number') d[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) d[k] = [...v];
  }
  return d as ErrorDetails;
}

/**
 * The error a code stands for, as its class with `details`' fields and exactly `message`: how an error that crossed
 * postMessage (a worker engine's) is thrown again on the page. An unknown code gives a LlamaWebGpuError with it.
 */
export function errorFromCode(code: string, message: string, details: ErrorDetails = {}): LlamaWebGpuError {
  const make = Object.hasOwn(CLASS_OF_CODE, code) ? CLASS_OF_CODE[code as ErrorCode] : null;
  const e = make ? make(details) : new LlamaWebGpuError(code as ErrorCode, message);
  e.message = message;
  return e;
}
