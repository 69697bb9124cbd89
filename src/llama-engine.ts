/**
 * LlamaEngine: what createEngine() (Engine, on the calling thread) and createWorkerEngine() (WorkerEngine, in a Web
 * Worker) both offer. Code written against it runs on either.
 */
import type { EngineStats, GenerateOptions, GenerateStream, ScoreOptions, ScoreResult, TokenizeOptions } from './engine-types.ts';
import type { ChatMessage } from './generate/chat-template.ts';
import type { ChatApi } from './generate/openai.ts';

export interface LlamaEngine {
  /** The installed model's id in the store. */
  readonly modelId: string;
  /** OpenAI-style chat completions: `chat.completions.create({ messages, stream? })`. */
  readonly chat: ChatApi;
  /**
   * Streams the continuation of `prompt` (text, or token ids including BOS) as text deltas with their token ids.
   * The request queues when the stream is first iterated; leaving the iteration early, or `options.signal`, cancels
   * it. Bad options throw InvalidOptionsError at once.
   */
  generate(prompt: string | number[], options?: GenerateOptions): GenerateStream;
  /** Token ids of `text` as generate() prompts with it: BOS first unless `options.addBos` is false. */
  tokenize(text: string, options?: TokenizeOptions): Promise<number[]>;
  /** Text of token ids (BOS and EOS give none): detokenize(await tokenize(text)) is `text`. */
  detokenize(ids: number[]): Promise<string>;
  /**
   * Token ids of the prompt a chat request with these messages sends (the model's chat template, BOS included),
   * before any oldest turns are dropped to fit the context: its length is what the conversation costs.
   */
  tokenizeChat(messages: ChatMessage[]): Promise<number[]>;
  /**
   * Perplexity of `text` under the model (its tokens teacher-forced from BOS). Queued like a request, it never
   * interleaves with one; it overwrites the KV cache, so the next prompt is prefilled whole. `signal` stops it
   * between prefill chunks (an AbortError).
   */
  score(text: string, options?: ScoreOptions): Promise<ScoreResult>;
  /** Counters of the last finished generate or chat request (before the first: the load's). */
  stats(): EngineStats;
  /** Frees the model's GPU memory; afterwards every call throws EngineUnloadedError. */
  unload(): Promise<void>;
}
