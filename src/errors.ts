/**
 * Every failure the library reports is a subclass of LlamaWebGpuError. Each message says what happened,
 * names the file, tensor, field or op involved, and says what to do next.
 */
export class LlamaWebGpuError extends Error {
  /** Stable machine-readable code, e.g. "KERNEL_SHAPE". */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** No WebGPU adapter could be obtained (browser without WebGPU, or no Vulkan driver in Node). */
export class WebGpuUnavailableError extends LlamaWebGpuError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEBGPU_UNAVAILABLE', message, options);
  }
}

/** The adapter lacks a limit or feature that a model or kernel needs. */
export class GpuLimitError extends LlamaWebGpuError {
  constructor(message: string) {
    super('GPU_LIMIT', message);
  }
}

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
export class PackageVersionError extends LlamaWebGpuError {
  readonly file: string;
  constructor(file: string, message: string) {
    super('PACKAGE_VERSION', `${file}: ${message}`);
    this.file = file;
  }
}

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
export class ShardIntegrityError extends LlamaWebGpuError {
  readonly file: string;
  constructor(file: string, message: string) {
    super('SHARD_INTEGRITY', `${file}: ${message}`);
    this.file = file;
  }
}

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
export class GpuOutOfMemoryError extends LlamaWebGpuError {
  constructor(message: string) {
    super('GPU_OUT_OF_MEMORY', message);
  }
}

/** A conversion was asked for something impossible (e.g. a shard size smaller than one row of a tensor). */
export class ConvertOptionsError extends LlamaWebGpuError {
  constructor(message: string) {
    super('CONVERT_OPTIONS', message);
  }
}

/** Sampling options out of range (a negative temperature, top-p outside (0, 1], a bias for a token id not in the vocabulary...). */
export class SamplingParamsError extends LlamaWebGpuError {
  constructor(message: string) {
    super('SAMPLING_PARAMS', message);
  }
}

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
