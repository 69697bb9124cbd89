/**
 * llama-webgpu's public API. Everything a page or an app needs is exported here by name.
 */
export { createEngine, Engine } from './engine.ts';
export { createWorkerEngine, WorkerEngine, StoreWorkerClient } from './worker/index.ts';
export type { WorkerEngineOptions, StoreTaskOptions, TaskProgress } from './worker/index.ts';
export type { LlamaEngine } from './llama-engine.ts';
export type { EngineOptions } from './engine.ts';
export type { EngineProgress, EngineStats, GenerateOptions, GenerateStream, TextDelta, TokenizeOptions, ScoreOptions, ScoreProgress, ScoreResult } from './engine-types.ts';
export type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatContentPart, ChatRequestMessage, Usage } from './generate/openai.ts';
export type { ResponseFormat } from './generate/openai.ts';
export type { JsonSchema } from './generate/json-schema.ts';
export { llama2ChatPromptIds } from './generate/chat-template.ts';
export type { ChatMessage } from './generate/chat-template.ts';
export type { FinishReason, SamplingOptions } from './generate/generate.ts';
export type { ContextOverflowPolicy } from './generate/context.ts';

export { Gpu, summarizeAdapter } from './gpu/device.ts';
export type { AdapterSummary, GpuOptions } from './gpu/device.ts';

export { createIdbStore } from './storage/idb-store.ts';
export { installFromUrl } from './storage/install.ts';
export { importFromUrl } from './storage/import.ts';
export type { ImportOptions, ImportProgress } from './storage/import.ts';
export type { InstalledModel, ModelStore } from './storage/store.ts';
export { checkFit } from './loader/fit.ts';
export type { FitReport } from './loader/fit.ts';

export { Tokenizer } from './tokenizer/tokenizer.ts';

export type { Manifest, TensorEntry, ShardEntry } from './formats/manifest.ts';
export type { ModelConfig } from './model/config.ts';

export {
  LlamaWebGpuError,
  WebGpuUnavailableError,
  GpuLimitError,
  ModelDoesNotFitError,
  KernelShapeError,
  ModelFormatError,
  InvalidOptionsError,
  JsonSchemaError,
  TokenizerDisposedError,
  StorageError,
  DownloadError,
  ModelIntegrityError,
  DeviceLostError,
  GpuOutOfMemoryError,
  ModelNotInstalledError,
  StorageQuotaError,
  PackageVersionError,
  ShardIntegrityError,
  ConvertOptionsError,
  SamplingParamsError,
  ContextOverflowError,
  ChatFormatError,
  EngineUnloadedError,
  WorkerEngineTerminatedError,
} from './errors.ts';
export type { ErrorCode, ErrorDetails } from './errors.ts';
