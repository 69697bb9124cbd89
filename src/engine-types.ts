/**
 * The shapes of a request and its results, shared by Engine, WorkerEngine and the chat completions layer (which
 * depends on them, not on the engines).
 */
import type { DecodeCounters, FinishReason, GenerateIdsOptions } from './generate/generate.ts';
import type { JsonSchema } from './generate/json-schema.ts';

export interface EngineProgress {
  phase: 'tokenizer' | 'weights' | 'compile' | 'ready';
  loadedBytes: number;
  totalBytes: number;
  /** 0..1 over the whole load. */
  fraction: number;
  /** Largest number of shard bytes the loader held in JavaScript memory at once so far. */
  peakHeldBytes: number;
}

export interface GenerateOptions extends GenerateIdsOptions {
  /** Generation ends before this string, or any of these strings; they are not part of the output. */
  stop?: string | string[];
  /** Prepend BOS to a text prompt (default true). */
  addBos?: boolean;
  /**
   * The output continues the prompt's text, so a leading space of the first token is kept ("Once" + " upon").
   * Default: true when the prompt has any token besides BOS. Chat replies set it false.
   */
  continuation?: boolean;
  /**
   * Structured output: the reply is compact JSON matching this JSON schema (json-schema.ts lists the keywords),
   * complete within maxTokens, and generation ends when the value does. `{ type: 'object' }` asks for any object.
   */
  jsonSchema?: JsonSchema;
}

/** Checked generate options of a request that an engine runs: `stop` as a list, and the messages a chat dropped. */
export type RunOptions = Omit<GenerateOptions, 'stop'> & { stop?: string[]; droppedMessages?: number };

export interface TextDelta {
  text: string;
  tokenIds: number[];
}

/** A request's counters. submits, readbacks, stalls, encodeMs, maskMs and warning are its decode loop's. */
export interface EngineStats extends DecodeCounters {
  loadMs: number;
  promptTokens: number;
  /** Leading prompt tokens whose keys and values were already in the KV cache (GenerateOptions.cache). */
  cachedPromptTokens: number;
  /** Prompt tokens run through the model: promptTokens - cachedPromptTokens. */
  prefilledTokens: number;
  generatedTokens: number;
  /** From the start of the prefill to the first generated token, in milliseconds. */
  timeToFirstTokenMs: number;
  /** Tokens of prompt and reply together (at most contextLength), against the KV cache's length: how full the context is. */
  contextTokens: number;
  contextLength: number;
  /** Messages of a chat request left out to fit the context (its oldest turns); 0 for generate(). */
  droppedMessages: number;
  /** prefilledTokens per second of prefill. */
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  finishReason: FinishReason | null;
  /** Compute dispatches one decode step encodes (a property of the loaded model and GPU). */
  dispatchesPerToken: number;
}

/**
 * The text deltas of one request, in order; `result` settles with its stats when it ends (finishReason 'abort'
 * when the consumer left early or its signal aborted).
 */
export type GenerateStream = AsyncIterable<TextDelta> & { result: Promise<EngineStats> };

/** tokenize() options. */
export interface TokenizeOptions {
  /** Put BOS first (default true), as generate() does with a text prompt. */
  addBos?: boolean;
}

/** score() progress: text tokens scored so far, of `total`. */
export interface ScoreProgress {
  done: number;
  total: number;
}

export interface ScoreOptions {
  signal?: AbortSignal;
  onProgress?: (p: ScoreProgress) => void;
}

/**
 * A text's teacher-forced scores: each of its tokens predicted from BOS and the tokens before it (in windows of the
 * context for a text longer than it), as `llama-webgpu eval` and llama.cpp's llama-perplexity measure it.
 */
export interface ScoreResult {
  /** The text's tokens (without BOS): the tokens scored. */
  tokenIds: number[];
  /** tokenIds.length. */
  tokens: number;
  /** Mean negative log-likelihood per token, in nats. */
  nll: number;
  /** exp(nll). */
  perplexity: number;
  /** -ln p of each token given the ones before it. */
  tokenNll: number[];
  /** The model's most likely token at each of those positions. */
  top1: number[];
}
