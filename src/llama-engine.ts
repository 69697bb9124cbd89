/**
 * LlamaEngine: what createEngine() (Engine, on the calling thread) and createWorkerEngine() (WorkerEngine, in a Web
 * Worker) both offer. Code written against it runs on either.
 */
import type { EngineStats, GenerateOptions, GenerateStream } from './engine-types.ts';
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
  /** Counters of the last finished request (before the first: the load's). */
  stats(): EngineStats;
  /** Frees the model's GPU memory; afterwards every call throws EngineUnloadedError. */
  unload(): Promise<void>;
}
