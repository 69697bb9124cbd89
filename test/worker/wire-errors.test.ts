// Errors crossing postMessage: every code of the catalogue comes back from toWireError -> structured clone ->
// fromWireError as the same class, with its code, name, message and fields.
import { describe, expect, it } from 'vitest';
import * as errors from '../../src/errors.ts';
import {
  BrowserSetupError, ChatFormatError, ContextOverflowError, ConvertOptionsError, DeviceLostError, DownloadError,
  EngineUnloadedError, ERROR_CODES, errorFromCode, GpuLimitError, GpuOutOfMemoryError, InvalidOptionsError,
  JsonSchemaError, KernelShapeError, LlamaWebGpuError, ModelDoesNotFitError, ModelFormatError, ModelIntegrityError,
  ModelNotInstalledError, PackageVersionError, SamplingParamsError, ShardIntegrityError, StorageError,
  StorageQuotaError, TokenizerDisposedError, WebGpuUnavailableError, WorkerEngineTerminatedError, type ErrorCode,
} from '../../src/errors.ts';
import * as libraryEntry from '../../src/index.ts';
import * as nodeEntry from '../../src/node.ts';
import * as workerEntry from '../../src/worker/index.ts';
import { fromWireError, toWireError } from '../../src/worker/protocol.ts';

/** One error of every code, as the library throws it (fields set to values a default would not give). */
const EXAMPLES: Record<ErrorCode, LlamaWebGpuError> = {
  WEBGPU_UNAVAILABLE: new WebGpuUnavailableError('No adapter.'),
  GPU_LIMIT: new GpuLimitError('maxStorageBufferBindingSize is 128 MiB; L0.wq needs 256 MiB.'),
  GPU_OUT_OF_MEMORY: new GpuOutOfMemoryError('The KV cache does not fit.'),
  DEVICE_LOST: new DeviceLostError('stories15M', 'destroyed', 'device.destroy() was called'),
  MODEL_DOES_NOT_FIT: new ModelDoesNotFitError('llama-7b', ['Weights need 13 GB.', 'The KV cache needs 1 GB.']),
  KERNEL_SHAPE: new KernelShapeError('matmul', 'K must be a multiple of 32, got 30.'),
  MODEL_FORMAT: new ModelFormatError('model.gguf', 'unknown tensor type 99.', 'blk.0.attn_q.weight'),
  MODEL_NOT_INSTALLED: new ModelNotInstalledError('stories42M'),
  TOKENIZER_DISPOSED: new TokenizerDisposedError(),
  STORAGE: new StorageError('stories15M', 'shard-00001.bin is missing.'),
  STORAGE_QUOTA: new StorageQuotaError('The model needs 2 GB; 1 GB is free.', 2e9, 1e9),
  PACKAGE_VERSION: new PackageVersionError('manifest.json', 'formatVersion 9 is newer than this library.'),
  DOWNLOAD: new DownloadError('https://example.test/m/shard-00000.bin', 404, 'HTTP 404 for shard-00000.bin.'),
  SHARD_INTEGRITY: new ShardIntegrityError('shard-00000.bin', 'sha256 does not match.'),
  MODEL_INTEGRITY: new ModelIntegrityError('stories15M', 'shard-00000.bin', 'sha256 does not match; reinstall.'),
  CONVERT_OPTIONS: new ConvertOptionsError('Shard size 10 is below one row.'),
  SAMPLING_PARAMS: new SamplingParamsError('temperature must be at least 0.'),
  INVALID_OPTIONS: new InvalidOptionsError('top_p', 'must be in (0, 1], got 2.'),
  JSON_SCHEMA: new JsonSchemaError('patternProperties', '/properties/a', 'is not supported.'),
  CONTEXT_OVERFLOW: new ContextOverflowError(300, 256, 64),
  CHAT_FORMAT: new ChatFormatError('the last message must be from the user'),
  ENGINE_UNLOADED: new EngineUnloadedError(),
  WORKER_TERMINATED: new WorkerEngineTerminatedError(),
  BROWSER_SETUP: new BrowserSetupError('Chromium not found.'),
  WORKER_ERROR: new LlamaWebGpuError('WORKER_ERROR', 'The engine worker crashed.'),
  ENGINE_NOT_LOADED: new LlamaWebGpuError('ENGINE_NOT_LOADED', 'No model yet.'),
  ENGINE_ALREADY_LOADED: new LlamaWebGpuError('ENGINE_ALREADY_LOADED', 'A model is loaded.'),
  NO_FILES: new LlamaWebGpuError('NO_FILES', 'No files were given.'),
  EMPTY_PROMPT: new LlamaWebGpuError('EMPTY_PROMPT', 'The prompt has no tokens.'),
  BAD_TOKEN: new LlamaWebGpuError('BAD_TOKEN', 'Prompt token id 999 is outside the vocabulary.'),
  JSON_VOCAB: new LlamaWebGpuError('JSON_VOCAB', 'No one-token spelling of "{".'),
  JSON_MASK: new LlamaWebGpuError('JSON_MASK', 'Token 5 does not continue the JSON output.'),
  GPU_VALIDATION: new LlamaWebGpuError('GPU_VALIDATION', 'createBuffer: size too large.'),
  NOT_A_PACKAGE: new LlamaWebGpuError('NOT_A_PACKAGE', '/tmp/x has no manifest.json.'),
  BROWSER: new LlamaWebGpuError('BROWSER', 'The page failed.'),
};

/** The data fields of an error (what a caller can read besides code, name and message). */
function fields(e: Error): Record<string, unknown> {
  return Object.fromEntries(Object.entries(e).filter(([k]) => !['code', 'name', 'message', 'stack', 'cause'].includes(k)));
}

describe('error catalogue', () => {
  it('has an example of every code, each with that code', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual([...ERROR_CODES].sort());
    for (const [code, e] of Object.entries(EXAMPLES)) expect(e.code).toBe(code);
  });

  it.each(ERROR_CODES)('%s comes back from a worker as the same class with its fields', (code) => {
    const sent = EXAMPLES[code];
    const back = fromWireError(structuredClone(toWireError(sent)));
    expect(back).toBeInstanceOf(LlamaWebGpuError);
    expect(back.constructor).toBe(sent.constructor);
    expect(back).toMatchObject({ code: sent.code, name: sent.name, message: sent.message });
    expect(fields(back)).toEqual(fields(sent));
  });

  it('keeps the fields a class carries, e.g. ContextOverflowError and InvalidOptionsError', () => {
    const overflow = fromWireError(structuredClone(toWireError(EXAMPLES.CONTEXT_OVERFLOW)));
    expect(overflow).toBeInstanceOf(ContextOverflowError);
    expect(overflow).toMatchObject({ promptTokens: 300, contextLength: 256, replyTokens: 64 });
    const bad = fromWireError(structuredClone(toWireError(EXAMPLES.INVALID_OPTIONS)));
    expect(bad).toBeInstanceOf(InvalidOptionsError);
    expect((bad as InvalidOptionsError).option).toBe('top_p');
    expect(bad.message).toBe('top_p: must be in (0, 1], got 2.');
  });

  it('an unloaded worker engine is an EngineUnloadedError too; a terminated one is a WorkerEngineTerminatedError', () => {
    expect(new WorkerEngineTerminatedError(true)).toBeInstanceOf(EngineUnloadedError);
    expect(new WorkerEngineTerminatedError(true).code).toBe('ENGINE_UNLOADED');
    expect(errorFromCode('WORKER_TERMINATED', 'gone')).toBeInstanceOf(WorkerEngineTerminatedError);
  });

  it('rebuilds an AbortError as an AbortError, another error under its name, and an unknown code as itself', () => {
    const abort = fromWireError(toWireError(new DOMException('Stopped.', 'AbortError')));
    expect(abort).toBeInstanceOf(DOMException);
    expect(abort.name).toBe('AbortError');
    const type = fromWireError(toWireError(new TypeError('x is not a function')));
    expect(type).toBeInstanceOf(LlamaWebGpuError);
    expect(type).toMatchObject({ code: 'WORKER_ERROR', name: 'TypeError', message: 'x is not a function' });
    const future = errorFromCode('SOME_NEWER_CODE', 'From a newer worker.');
    expect(future).toMatchObject({ code: 'SOME_NEWER_CODE', name: 'LlamaWebGpuError', message: 'From a newer worker.' });
  });

  it('exports every error class from the package entries (BrowserSetupError from the Node entry only)', () => {
    const classes = Object.entries(errors).filter(([, v]) => typeof v === 'function' && (v === LlamaWebGpuError || v.prototype instanceof LlamaWebGpuError));
    expect(classes.length).toBe(25);
    for (const [name, cls] of classes) {
      expect((nodeEntry as Record<string, unknown>)[name], name).toBe(cls);
      if (name === 'BrowserSetupError') continue;
      expect((libraryEntry as Record<string, unknown>)[name], name).toBe(cls);
      expect((workerEntry as Record<string, unknown>)[name], name).toBe(cls);
    }
  });
});
