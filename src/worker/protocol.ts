/**
 * Messages between a page and the engine worker (engine-worker.ts). Every request carries an id; the worker
 * answers with events for that id and ends each request with exactly one `done` or `error`.
 */
import type { EngineProgress, EngineStats, GenerateOptions, ScoreProgress, ScoreResult, TextDelta, TokenizeOptions } from '../engine-types.ts';
import type { ChatMessage } from '../generate/chat-template.ts';
import { errorDetails, errorFromCode, LlamaWebGpuError, type ErrorDetails } from '../errors.ts';
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
  | { type: 'tokenize'; id: number; text: string; options: TokenizeOptions }
  | { type: 'detokenize'; id: number; ids: number[] }
  | { type: 'tokenizeChat'; id: number; messages: ChatMessage[] }
  /** `progress`: the page passed onProgress, so the worker sends scoreProgress events. */
  | { type: 'score'; id: number; text: string; progress: boolean }
  | { type: 'abort'; id: number }
  | { type: 'unload'; id: number };

/** An error as plain data; fromWireError rebuilds its class (or an AbortError) from it. */
export interface WireError {
  name: string;
  /** A LlamaWebGpuError's code; none for other errors. */
  code?: string;
  message: string;
  /** The class's fields (file, modelId, option...). */
  details?: ErrorDetails;
}

export interface LoadInfo {
  modelId: string;
  stats: EngineStats;
}

export type FromWorker =
  | { type: 'progress'; id: number; progress: EngineProgress }
  | { type: 'delta'; id: number; delta: TextDelta }
  | { type: 'chunk'; id: number; chunk: ChatCompletionChunk }
  | { type: 'scoreProgress'; id: number; progress: ScoreProgress }
  /** stats: the engine's last request's; the rest is what the request returns (tokenize: tokenIds, detokenize: text). */
  | { type: 'done'; id: number; stats: EngineStats; completion?: ChatCompletion; load?: LoadInfo; tokenIds?: number[]; text?: string; score?: ScoreResult }
  | { type: 'error'; id: number; error: WireError };

export function toWireError(e: unknown): WireError {
  if (e instanceof LlamaWebGpuError) return { name: e.name, code: e.code, message: e.message, details: errorDetails(e) };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}

/**
 * The error a worker reported, thrown again on the page: the same LlamaWebGpuError class with its code, message and
 * fields (errorFromCode), an AbortError as an AbortError, and any other error as a WORKER_ERROR under its own name.
 */
export function fromWireError(w: WireError): Error {
  if (w.name === 'AbortError') return new DOMException(w.message, 'AbortError');
  const e = errorFromCode(w.code ?? 'WORKER_ERROR', w.message, w.details);
  if (!w.code) e.name = w.name;
  return e;
}
