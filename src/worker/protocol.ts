/**
 * Messages between a page and the engine worker (engine-worker.ts). Every request carries an id; the worker
 * answers with events for that id and ends each request with exactly one `done` or `error`.
 */
import type { EngineProgress, EngineStats, GenerateOptions, TextDelta } from '../engine.ts';
import { InvalidOptionsError } from '../errors.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest } from '../generate/openai.ts';

/** What crosses postMessage: options without the AbortSignal (aborts travel as their own message). */
export type WireGenerateOptions = Omit<GenerateOptions, 'signal'>;
export type WireChatRequest = Omit<ChatCompletionRequest, 'signal'>;

export interface WireLoadOptions {
  model: string;
  /** IndexedDB database of the model store (createIdbStore's name); default the store's own default. */
  storeName?: string;
  contextLength?: number;
  prefillChunk?: number;
  /** EngineOptions.verify. */
  verify?: 'first-load' | 'always' | 'never';
}

export type ToWorker =
  | { type: 'load'; id: number; options: WireLoadOptions }
  | { type: 'generate'; id: number; prompt: string | number[]; options: WireGenerateOptions }
  | { type: 'chat'; id: number; request: WireChatRequest }
  | { type: 'abort'; id: number }
  | { type: 'unload'; id: number };

/** An error as plain data; the client rebuilds a LlamaWebGpuError (or an AbortError) from it. */
export interface WireError {
  name: string;
  code?: string;
  message: string;
  /** InvalidOptionsError's option. */
  option?: string;
  /** DeviceLostError's and ModelIntegrityError's fields. */
  modelId?: string;
  file?: string;
  reason?: string;
}

export interface LoadInfo {
  modelId: string;
  stats: EngineStats;
}

export type FromWorker =
  | { type: 'progress'; id: number; progress: EngineProgress }
  | { type: 'delta'; id: number; delta: TextDelta }
  | { type: 'chunk'; id: number; chunk: ChatCompletionChunk }
  | { type: 'done'; id: number; stats: EngineStats; completion?: ChatCompletion; load?: LoadInfo }
  | { type: 'error'; id: number; error: WireError };

export function toWireError(e: unknown): WireError {
  if (e instanceof InvalidOptionsError) return { name: e.name, code: e.code, message: e.message, option: e.option };
  if (e instanceof Error) {
    const { code, modelId, file, reason } = e as Partial<Record<'code' | 'modelId' | 'file' | 'reason', string>>;
    return { name: e.name, code, message: e.message, modelId, file, reason };
  }
  return { name: 'Error', message: String(e) };
}
