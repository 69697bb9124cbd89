/**
 * `llama-webgpu/worker`: the engine in a Web Worker, with the API of createEngine(). Also exported from the main
 * entry; this entry lets an app load only the worker client on its main thread.
 */
export { createWorkerEngine, WorkerEngine } from './client.ts';
export type { WorkerEngineOptions } from './client.ts';
export type { LlamaEngine } from '../llama-engine.ts';
export type { EngineProgress, EngineStats, GenerateOptions, GenerateStream, TextDelta, TokenizeOptions, ScoreOptions, ScoreProgress, ScoreResult } from '../engine-types.ts';
export type { ChatMessage } from '../generate/chat-template.ts';
export { StoreWorkerClient } from './store-client.ts';
export type { StoreTaskOptions, TaskProgress } from './store-client.ts';
// The errors the worker clients rethrow (as the class thrown in the worker, with its fields).
export { LlamaWebGpuError, WorkerEngineTerminatedError, EngineUnloadedError, InvalidOptionsError, ContextOverflowError } from '../errors.ts';
export { ChatFormatError, JsonSchemaError, SamplingParamsError, ModelNotInstalledError, ModelDoesNotFitError } from '../errors.ts';
export { ModelFormatError, ModelIntegrityError, ShardIntegrityError, DeviceLostError, GpuOutOfMemoryError, GpuLimitError } from '../errors.ts';
export { WebGpuUnavailableError, TokenizerDisposedError, StorageError, StorageQuotaError, DownloadError } from '../errors.ts';
export { PackageVersionError, ConvertOptionsError, KernelShapeError } from '../errors.ts';
export type { ErrorCode, ErrorDetails } from '../errors.ts';
