/**
 * createWorkerEngine(): the engine API of createEngine(), backed by a Web Worker so a page never blocks while a
 * model loads or generates.
 *
 *   const engine = await createWorkerEngine({ model: 'stories260K', onProgress });
 *   for await (const d of engine.generate('Once upon a time', { maxTokens: 50 })) out += d.text;
 *   const stream = await engine.chat.completions.create({ messages, stream: true, signal });
 */
import type { EngineProgress, EngineStats, GenerateOptions, GenerateStream, ScoreOptions, ScoreResult, TextDelta, TokenizeOptions } from '../engine-types.ts';
import type { ChatMessage } from '../generate/chat-template.ts';
import type { LlamaEngine } from '../llama-engine.ts';
import { LlamaWebGpuError, WorkerEngineTerminatedError } from '../errors.ts';
import { chatGenerateOptions, type ChatApi, type ChatCompletion, type ChatCompletionChunk, type ChatCompletionRequest } from '../generate/openai.ts';
import { idleStats } from '../generate/stats.ts';
import {
  CHAT_OPTION_NAMES, validateChatRequest, validateGenerateOptions, validateLoadOptions, validatePrompt, validateScoreOptions, validateText,
  validateTokenIds, validateTokenizeOptions,
} from '../generate/validate.ts';
import { fromWireError, type FromWorker, type ToWorker, type WireLoadOptions } from './protocol.ts';

export interface WorkerEngineOptions extends WireLoadOptions {
  onProgress?: (p: EngineProgress) => void;
  /** Aborts the load (the worker is terminated). */
  signal?: AbortSignal;
  /** A worker running engine-worker.ts; by default one is started from the bundled script. */
  worker?: Worker;
}

interface Pending {
  onEvent(m: FromWorker): void;
  /** Ends the request with an error raised on this side (worker crash, terminate). */
  fail(e: Error): void;
}

/** An async queue that a message handler pushes into and a `for await` drains. */
class Channel<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private failWaiting: ((e: unknown) => void) | null = null;
  private closed = false;
  private started = false;
  private error: unknown = null;

  /**
   * `start` runs at the first next(), so nothing is sent before the consumer iterates; `cancel` runs when the
   * consumer stops iterating early (break in a for await, or return() before iterating: `started` false).
   */
  constructor(private readonly hooks: { start?: () => void; cancel?: (started: boolean) => void } = {}) {}

  push(item: T): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = this.failWaiting = null;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  close(error?: unknown): void {
    this.closed = true;
    if (error !== undefined) this.error = error;
    if (this.waiting) {
      const [w, f] = [this.waiting, this.failWaiting!];
      this.waiting = this.failWaiting = null;
      if (this.error !== null) f(this.error);
      else w({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (!this.started) {
          this.started = true;
          this.hooks.start?.();
        }
        if (this.items.length) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.closed) return this.error !== null ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiting = resolve;
          this.failWaiting = reject;
        });
      },
      return: () => {
        if (!this.closed) this.hooks.cancel?.(this.started);
        this.started = true;
        this.items = [];
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** The engine in a Web Worker (createWorkerEngine): Engine's API, with the model loaded and run off the page's thread. */
export class WorkerEngine implements LlamaEngine {
  readonly chat: ChatApi;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private last: EngineStats;
  private terminated = false;
  private unloaded = false;

  /** @internal Use createWorkerEngine(). */
  constructor(
    private readonly worker: Worker,
    readonly modelId: string,
    stats: EngineStats,
  ) {
    this.last = stats;
    worker.onmessage = (ev: MessageEvent<FromWorker>) => this.pending.get(ev.data.id)?.onEvent(ev.data);
    worker.onerror = (ev) => this.failAll(new LlamaWebGpuError('WORKER_ERROR', `The engine worker crashed: ${ev.message || 'unknown error'}. Reload the page.`));
    const create = (req: ChatCompletionRequest) => this.chatCreate(req);
    this.chat = { completions: { create: create as ChatApi['completions']['create'] } };
  }

  private assertUsable(): void {
    if (this.terminated) throw new WorkerEngineTerminatedError(this.unloaded);
  }

  private send(msg: ToWorker): void {
    this.assertUsable();
    this.worker.postMessage(msg);
  }

  private failAll(e: Error): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.fail(e);
  }

  /** Sends a request; `onEvent` sees its progress/delta/chunk events; the promise settles on done or error. */
  private request(
    build: (id: number) => ToWorker,
    onEvent: (m: FromWorker) => void,
    signal?: AbortSignal,
  ): Promise<Extract<FromWorker, { type: 'done' }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => this.worker.postMessage({ type: 'abort', id } satisfies ToWorker);
      const finish = () => {
        this.pending.delete(id);
        signal?.removeEventListener('abort', onAbort);
      };
      this.pending.set(id, {
        onEvent: (m) => {
          if (m.type === 'done') {
            finish();
            this.last = m.stats;
            resolve(m);
          } else if (m.type === 'error') {
            finish();
            reject(fromWireError(m.error));
          } else onEvent(m);
        },
        fail: (e) => {
          finish();
          reject(e);
        },
      });
      try {
        this.send(build(id));
      } catch (e) {
        finish();
        reject(e);
        return;
      }
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Streams the continuation of `prompt` as text deltas, like Engine.generate(): the request is sent when the
   * stream is first iterated, and leaving the iteration early cancels it (finishReason 'abort'), as does an
   * aborted `signal`.
   */
  generate(prompt: string | number[], options: GenerateOptions = {}): GenerateStream {
    this.assertUsable();
    validatePrompt(prompt);
    const { signal, ...wire } = validateGenerateOptions(options);
    const cancel = new AbortController();
    let resolveResult!: (s: EngineStats) => void;
    let rejectResult!: (e: unknown) => void;
    const result = new Promise<EngineStats>((res, rej) => {
      resolveResult = res;
      rejectResult = rej;
    });
    result.catch(() => {});
    const deltas: Channel<TextDelta> = new Channel<TextDelta>({
      start: () =>
        this.request(
          (id) => ({ type: 'generate', id, prompt, options: wire }),
          (m) => m.type === 'delta' && deltas.push(m.delta),
          signal ? AbortSignal.any([signal, cancel.signal]) : cancel.signal,
        ).then(
          (m) => {
            deltas.close();
            resolveResult(m.stats);
          },
          (e) => {
            deltas.close(e);
            rejectResult(e);
          },
        ),
      cancel: (started) => {
        if (started) cancel.abort();
        else {
          deltas.close();
          resolveResult(this.unstartedStats());
        }
      },
    });
    return Object.assign(deltas, { result });
  }

  /** Stats of a request cancelled before it was sent. */
  private unstartedStats(): EngineStats {
    return idleStats(this.last.loadMs, this.last.dispatchesPerToken, this.last.contextLength, 'abort');
  }

  private async chatCreate(req: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion> {
    const { messages, stream } = validateChatRequest(req);
    validateGenerateOptions(chatGenerateOptions(req), undefined, CHAT_OPTION_NAMES);
    const { signal, ...rest } = req;
    const wire = { ...rest, messages };
    if (!stream) {
      const done = await this.request((id) => ({ type: 'chat', id, request: { ...wire, stream: false } }), () => {}, signal);
      return done.completion!;
    }
    this.assertUsable();
    const cancel = new AbortController();
    const chunks: Channel<ChatCompletionChunk> = new Channel<ChatCompletionChunk>({
      start: () =>
        this.request(
          (id) => ({ type: 'chat', id, request: { ...wire, stream: true } }),
          (m) => m.type === 'chunk' && chunks.push(m.chunk),
          signal ? AbortSignal.any([signal, cancel.signal]) : cancel.signal,
        ).then(
          () => chunks.close(),
          (e) => chunks.close(e),
        ),
      cancel: (started) => (started ? cancel.abort() : chunks.close()),
    });
    return chunks;
  }

  async tokenize(text: string, options: TokenizeOptions = {}): Promise<number[]> {
    validateText(text);
    validateTokenizeOptions(options);
    const done = await this.request((id) => ({ type: 'tokenize', id, text, options: { addBos: options.addBos } }), () => {});
    return done.tokenIds!;
  }

  /** Ids are checked against the vocabulary in the worker. */
  async detokenize(ids: number[]): Promise<string> {
    validateTokenIds(ids);
    const done = await this.request((id) => ({ type: 'detokenize', id, ids: [...ids] }), () => {});
    return done.text!;
  }

  async tokenizeChat(messages: ChatMessage[]): Promise<number[]> {
    const checked = validateChatRequest({ messages }).messages;
    const done = await this.request((id) => ({ type: 'tokenizeChat', id, messages: checked }), () => {});
    return done.tokenIds!;
  }

  /** Engine.score() in the worker: progress events come back to `onProgress`, `signal` aborts it there. */
  async score(text: string, options: ScoreOptions = {}): Promise<ScoreResult> {
    validateText(text);
    validateScoreOptions(options);
    const { onProgress, signal } = options;
    signal?.throwIfAborted();
    const done = await this.request(
      (id) => ({ type: 'score', id, text, progress: onProgress !== undefined }),
      (m) => m.type === 'scoreProgress' && onProgress?.(m.progress),
      signal,
    );
    return done.score!;
  }

  /** Counters of the last finished request (as Engine.stats()). */
  stats(): EngineStats {
    return { ...this.last };
  }

  /** Frees the model's GPU memory and stops the worker. */
  async unload(): Promise<void> {
    if (this.terminated) return;
    this.unloaded = true;
    try {
      await this.request((id) => ({ type: 'unload', id }), () => {});
    } finally {
      this.terminate();
    }
  }

  /** Stops the worker at once (a running request is dropped). */
  terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    this.worker.terminate();
    this.failAll(new WorkerEngineTerminatedError(this.unloaded));
  }
}

/** Starts a worker, loads an installed model from the IndexedDB store into it, and returns the engine. */
export async function createWorkerEngine(options: WorkerEngineOptions): Promise<WorkerEngine> {
  validateLoadOptions(options, false);
  const { onProgress, signal, worker: given, ...load } = options;
  const worker = given ?? new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: 'llama-webgpu-engine' });
  const id = 0;
  const done = new Promise<Extract<FromWorker, { type: 'done' }>>((resolve, reject) => {
    worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      if (m.id !== id) return;
      if (m.type === 'progress') onProgress?.(m.progress);
      else if (m.type === 'done') resolve(m);
      else if (m.type === 'error') reject(fromWireError(m.error));
    };
    worker.onerror = (ev) => {
      ev.preventDefault();
      reject(new LlamaWebGpuError('WORKER_ERROR', `The engine worker failed to start: ${ev.message || 'script error'}. Check that the page is served over http(s) and the worker script is reachable.`));
    };
    const onAbort = () => reject(signal!.reason ?? new DOMException('Loading was aborted.', 'AbortError'));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  worker.postMessage({ type: 'load', id, options: load } satisfies ToWorker);
  try {
    const m = await done;
    return new WorkerEngine(worker, m.load!.modelId, m.load!.stats);
  } catch (e) {
    worker.terminate();
    throw e;
  }
}
