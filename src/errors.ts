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
  constructor(file: string, message: string, field?: string) {
    super('MODEL_FORMAT', `${file}${field ? ` (${field})` : ''}: ${message}`);
    this.file = file;
    this.field = field;
  }
}
