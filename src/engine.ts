/**
 * The engine: one loaded model, its tokenizer, and a queue so requests run one at a time in arrival order.
 *
 *   const engine = await createEngine({ model: 'stories260K', onProgress });
 *   for await (const d of engine.generate('Once upon a time', { maxTokens: 50 })) out += d.text;
 *   const reply = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] });
 */
import { DeviceLostError, EngineUnloadedError, GpuOutOfMemoryError, ModelDoesNotFitError, ModelNotInstalledError, WebGpuUnavailableError } from './errors.ts';
import { Gpu } from './gpu/device.ts';
import { llama2ChatPromptIds, type ChatMessage } from './generate/chat-template.ts';
import { generateIds, type FinishReason, type GenerateResult } from './generate/generate.ts';
import { StopMatcher } from './generate/stop.ts';
import { jsonConstraint } from './generate/json-mask.ts';
import { checkFit } from './loader/fit.ts';
import { checkSha256, loadWeights, type LoadProgress } from './loader/load.ts';
import type { Manifest } from './formats/manifest.ts';
import { LlamaModel } from './model/llama.ts';
import type { ModelStore } from './storage/store.ts';
import { Tokenizer } from './tokenizer/tokenizer.ts';
import { createChatApi, type ChatApi } from './generate/openai.ts';
import type { EngineProgress, EngineStats, GenerateOptions, GenerateStream, RunOptions, ScoreOptions, ScoreResult, TextDelta, TokenizeOptions } from './engine-types.ts';
import type { LlamaEngine } from './llama-engine.ts';
import { validateChatRequest, validateGenerateOptions, validateLoadOptions, validatePrompt, validateScoreOptions, validateText, validateTokenIds, validateTokenizeOptions } from './generate/validate.ts';
import { Scorer, scoreResult } from './model/score.ts';
import { idleStats } from './generate/stats.ts';

export type { EngineProgress, EngineStats, GenerateOptions, GenerateStream, TextDelta } from './engine-types.ts';

export interface EngineOptions {
  /** The installed model's id in `store`. */
  model: string;
  /** Where the model package lives: the IndexedDB store in browsers, a directory store in Node. */
  store: ModelStore;
  /** A ready GPU; by default one is created from navigator.gpu (browser) or Dawn (Node). */
  gpu?: Gpu;
  /** KV cache length; default the model's maxSeqLen, reduced to what fits the GPU. */
  contextLength?: number;
  /** Prompt tokens per prefill step (default 64). */
  prefillChunk?: number;
  onProgress?: (p: EngineProgress) => void;
  signal?: AbortSignal;
  /**
   * Hash the tokenizer and every shard against the manifest's sha256 while loading; a file changed since install
   * fails the load with ModelIntegrityError. 'first-load' (default): on the first load after each install only,
   * then the store remembers it; 'always': every load; 'never'. Costs about one sha256 pass over the weights.
   */
  verify?: 'first-load' | 'always' | 'never';
}

/** An engine on the calling thread (createEngine); WorkerEngine is the same API in a Web Worker. */
export class Engine implements LlamaEngine {
  readonly chat: ChatApi;
  private queue: Promise<unknown> = Promise.resolve();
  private unloaded = false;
  private last: EngineStats;

  /** Set by createEngine: a new device with the model loaded again, for the first request after a device loss. */
  private reopen?: () => Promise<{ gpu: Gpu; model: LlamaModel }>;
  private lost: GPUDeviceLostInfo | null = null;

  constructor(
    /** The device and the model on it; both are replaced when a request finds the device lost. */
    public gpu: Gpu,
    public model: LlamaModel,
    readonly tokenizer: Tokenizer,
    readonly manifest: Manifest,
    readonly modelId: string,
    loadMs: number,
  ) {
    this.last = idleStats(loadMs, model.forward.dispatchesPerDecode, model.contextLength);
    const self = this;
    this.chat = createChatApi({
      modelId,
      get vocabSize() {
        return self.config.vocabSize;
      },
      get contextLength() {
        return self.model.contextLength;
      },
      get cachedIds() {
        return self.model.cachedIds;
      },
      encodeChat: (messages) => this.encodeChat(messages),
      run: (promptIds, options) => this.run(promptIds, options),
    });
  }

  get config() {
    return this.model.config;
  }

  /** Token ids of a text prompt (with BOS unless addBos is false). */
  encode(text: string, addBos = true): number[] {
    if (this.unloaded) throw new EngineUnloadedError();
    const ids = this.tokenizer.encode(text);
    return addBos ? [this.model.config.bosId, ...ids] : ids;
  }

  /** Token ids of a Llama 2 chat conversation, ready for the assistant's reply. */
  encodeChat(messages: ChatMessage[]): number[] {
    if (this.unloaded) throw new EngineUnloadedError();
    return llama2ChatPromptIds(messages, (t) => this.tokenizer.encode(t), this.model.config.bosId, this.model.config.eosId);
  }

  async tokenize(text: string, options: TokenizeOptions = {}): Promise<number[]> {
    validateText(text);
    validateTokenizeOptions(options);
    return this.encode(text, options.addBos ?? true);
  }

  async detokenize(ids: number[]): Promise<string> {
    if (this.unloaded) throw new EngineUnloadedError();
    validateTokenIds(ids, this.config.vocabSize);
    return this.tokenizer.decode(ids);
  }

  async tokenizeChat(messages: ChatMessage[]): Promise<number[]> {
    return this.encodeChat(validateChatRequest({ messages }).messages);
  }

  /**
   * Perplexity of `text`: its tokens teacher-forced from BOS, in windows of the context, through the request queue.
   * It overwrites the KV cache from position 0, so the next request prefills its whole prompt.
   */
  async score(text: string, options: ScoreOptions = {}): Promise<ScoreResult> {
    if (this.unloaded) throw new EngineUnloadedError();
    validateText(text);
    validateScoreOptions(options);
    options.signal?.throwIfAborted();
    const ids = this.encode(text, false);
    const place = this.enqueue();
    try {
      await place.turn;
      if (this.unloaded) throw new EngineUnloadedError();
      await this.recover();
      const scorer = new Scorer(this.model);
      try {
        return scoreResult(ids, await scorer.score(ids, options));
      } finally {
        scorer.destroy();
      }
    } catch (e) {
      throw await this.lostError(e);
    } finally {
      place.done();
    }
  }

  /** A place at the end of the queue: `turn` settles when the requests before it have finished; call `done` after. */
  private enqueue(): { turn: Promise<unknown>; done: () => void } {
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const turn = this.queue;
    this.queue = turn.then(() => finished);
    return { turn, done };
  }

  /**
   * Streams the continuation of `prompt` (text, or token ids including BOS) as text deltas with their token ids.
   * Requests queue in the order they are first iterated: a stream that is never iterated never holds the engine.
   * Leaving the iteration early (break, return()) cancels the request like an abort: `result` then settles with
   * finishReason 'abort'.
   */
  generate(prompt: string | number[], options: GenerateOptions = {}): GenerateStream {
    if (this.unloaded) throw new EngineUnloadedError();
    validatePrompt(prompt, this.config.vocabSize);
    const opts = validateGenerateOptions(options, this.config.vocabSize);
    const ids = typeof prompt === 'string' ? this.encode(prompt, opts.addBos ?? true) : prompt;
    return this.run(ids, opts);
  }

  /** Runs a request with checked options (generate's, or the chat API's); it joins the queue when first iterated. */
  private run(promptIds: number[], options: RunOptions): GenerateStream {
    if (this.unloaded) throw new EngineUnloadedError();
    let resolveResult!: (s: EngineStats) => void;
    let rejectResult!: (e: unknown) => void;
    let settled = false;
    const result = new Promise<EngineStats>((res, rej) => {
      resolveResult = (s) => ((settled = true), res(s));
      rejectResult = (e) => ((settled = true), rej(e));
    });
    result.catch(() => {});
    const self = this;
    const statsOf = (g: GenerateResult | undefined, finishReason: FinishReason): EngineStats => ({
      loadMs: self.last.loadMs,
      promptTokens: promptIds.length,
      cachedPromptTokens: g?.cachedTokens ?? 0,
      prefilledTokens: g ? promptIds.length - g.cachedTokens : 0,
      generatedTokens: g?.generatedTokens ?? 0,
      timeToFirstTokenMs: g?.prefillMs ?? 0,
      // The last generated token takes no cache slot: a reply that ends at the context's end fills it exactly.
      contextTokens: g ? Math.min(promptIds.length + g.generatedTokens, self.model.contextLength) : 0,
      contextLength: self.model.contextLength,
      droppedMessages: options.droppedMessages ?? 0,
      prefillTokensPerSecond: g && g.prefillMs > 0 ? ((promptIds.length - g.cachedTokens) / g.prefillMs) * 1000 : 0,
      decodeTokensPerSecond: g && g.decodeMs > 0 && g.generatedTokens > 1 ? ((g.generatedTokens - 1) / g.decodeMs) * 1000 : 0,
      finishReason,
      submits: g?.submits ?? 0,
      readbacks: g?.readbacks ?? 0,
      stalls: g?.stalls ?? 0,
      encodeMs: g?.encodeMs ?? 0,
      maskMs: g?.maskMs ?? 0,
      warning: g?.warning,
      dispatchesPerToken: self.model.forward.dispatchesPerDecode,
    });
    const finish = (g: GenerateResult | undefined, finishReason: FinishReason) => {
      const stats = statsOf(g, finishReason);
      if (g) self.last = stats;
      resolveResult(stats);
    };

    async function* stream(): AsyncGenerator<TextDelta> {
      const place = self.enqueue();
      // Ends the id generator early (a stop string, or the consumer left): it stops before the next step and
      // drains what is in flight, and still reports its counts.
      const cancel = new AbortController();
      let it: AsyncGenerator<number, GenerateResult> | null = null;
      let g: GenerateResult | undefined;
      const drain = async () => {
        cancel.abort();
        let r: IteratorResult<number, GenerateResult>;
        while (!(r = await it!.next()).done);
        g = r.value;
      };
      try {
        await place.turn;
        if (self.unloaded) throw new EngineUnloadedError();
        await self.recover();
        const bos = self.model.config.bosId;
        const decoder = self.tokenizer.createDecoder({ continuation: options.continuation ?? promptIds.some((id) => id !== bos) });
        const stops = new StopMatcher(options.stop ?? []);
        const signal = options.signal ? AbortSignal.any([options.signal, cancel.signal]) : cancel.signal;
        const constraint = options.jsonSchema === undefined ? undefined : jsonConstraint(self.tokenizer.vocab, options.jsonSchema, self.model.config.eosId);
        it = generateIds(self.model, promptIds, { ...options, signal, constraint });
        let pendingIds: number[] = [];
        for (;;) {
          const r = await it.next();
          if (r.done) {
            g = r.value;
            break;
          }
          pendingIds.push(r.value);
          const text = stops.push(decoder.push(r.value));
          if (stops.stopped) {
            await drain();
            if (text) yield { text, tokenIds: pendingIds };
            break;
          }
          if (text) {
            yield { text, tokenIds: pendingIds };
            pendingIds = [];
          }
        }
        const tail = stops.push(decoder.flush()) + stops.flush();
        if (tail || (pendingIds.length && !stops.stopped)) yield { text: tail, tokenIds: stops.stopped ? [] : pendingIds };
        finish(g, stops.stopped ? 'stop' : (g?.finishReason ?? 'stop'));
      } catch (e) {
        const err = await self.lostError(e);
        rejectResult(err);
        throw err;
      } finally {
        try {
          // The consumer left the loop early: cancel the request as an abort would.
          if (!settled) {
            try {
              if (it && !g) await drain();
              finish(g, 'abort');
            } catch (e) {
              rejectResult(e);
              throw e;
            }
          }
        } finally {
          place.done();
        }
      }
    }
    const s = stream();
    let started = false;
    const iterator: AsyncGenerator<TextDelta> = {
      next: (...a) => ((started = true), s.next(...a)),
      return: (v) => {
        // Cancelled before it ever ran: nothing was generated.
        if (!started) {
          started = true;
          finish(undefined, 'abort');
        }
        return s.return(v);
      },
      throw: (e) => ((started = true), s.throw(e)),
      [Symbol.asyncIterator]() {
        return this;
      },
    } as AsyncGenerator<TextDelta>;
    return Object.assign(iterator, { result });
  }

  /** @internal Watches the device; after a loss, the next request calls `reopen` before it runs. */
  watchDevice(reopen: () => Promise<{ gpu: Gpu; model: LlamaModel }>): void {
    this.reopen = reopen;
    const gpu = this.gpu;
    void gpu.device.lost.then((info) => {
      if (this.gpu === gpu) this.lost = info;
    });
  }

  /** A request's failure on a lost device becomes DeviceLostError (`lost` settles just after the failure it causes). */
  private async lostError(e: unknown): Promise<unknown> {
    if (!this.lost) await Promise.race([this.gpu.device.lost, new Promise((r) => setTimeout(r, 50))]);
    return this.lost ? new DeviceLostError(this.modelId, this.lost.reason, this.lost.message) : e;
  }

  /** After a device loss: a new device, and the model loaded on it from the store. A failure leaves the engine lost. */
  private async recover(): Promise<void> {
    if (!this.lost || !this.reopen) return;
    const { gpu, model } = await this.reopen();
    this.model.destroy();
    [this.gpu, this.model, this.lost] = [gpu, model, null];
    this.watchDevice(this.reopen);
  }

  stats(): EngineStats {
    return { ...this.last };
  }

  /** Frees every GPU buffer and the tokenizer's wasm memory; the engine cannot be used afterwards. Waits for a
   *  running request to finish. */
  async unload(): Promise<void> {
    this.unloaded = true;
    await this.queue.catch(() => {});
    this.model.destroy();
    this.tokenizer.dispose();
  }
}

async function defaultGpu(): Promise<Gpu> {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  if (nav?.gpu) {
    const adapter = await nav.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new WebGpuUnavailableError('This browser exposes WebGPU but no GPU adapter is available. Check that hardware acceleration is on, or try another browser.');
    return Gpu.create(adapter);
  }
  if (typeof process !== 'undefined' && process.versions?.node) {
    const { createNodeGpu } = await import('./gpu/node.ts');
    return createNodeGpu();
  }
  throw new WebGpuUnavailableError('WebGPU is not available in this browser. Use a recent Chrome, Edge or Safari (or Firefox with WebGPU enabled).');
}

/** Loads an installed model onto the GPU and returns a ready engine. */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  validateLoadOptions(options, true);
  const t0 = performance.now();
  const { store, model: id, onProgress } = options;
  const manifest = await store.getManifest(id);
  if (!manifest) throw new ModelNotInstalledError(id);
  const gpu = options.gpu ?? (await defaultGpu());
  const fit = checkFit(manifest, gpu.limits, { f16: gpu.f16 }, { contextLength: options.contextLength });
  if (!fit.fits) throw new ModelDoesNotFitError(id, fit.reasons);
  const total = fit.weightBytes;
  let peakHeldBytes = 0;
  const report = (phase: EngineProgress['phase'], loaded: number) =>
    onProgress?.({ phase, loadedBytes: loaded, totalBytes: total, fraction: total ? Math.min(1, loaded / total) : 1, peakHeldBytes });
  report('tokenizer', 0);
  const verify = options.verify === 'always' || (options.verify !== 'never' && !(await store.isVerified(id, manifest)));
  const tokenizerBytes = await store.readFile(id, manifest.tokenizer.file);
  if (verify) checkSha256(id, manifest.tokenizer, await crypto.subtle.digest('SHA-256', tokenizerBytes as Uint8Array<ArrayBuffer>));
  const tokenizer = await Tokenizer.fromModelProto(tokenizerBytes, `${id}/${manifest.tokenizer.file}`);
  const model = await openModel(gpu, options, manifest, fit.contextLength, verify, (p: LoadProgress) => {
    peakHeldBytes = Math.max(peakHeldBytes, p.peakHeldBytes);
    if (p.phase === 'done') report('compile', total);
    else report('weights', p.loadedBytes);
  }).catch((err: unknown) => {
    tokenizer.dispose();
    throw err;
  });
  if (verify) await store.markVerified(id, manifest);
  report('ready', total);
  const engine = new Engine(gpu, model, tokenizer, manifest, id, performance.now() - t0);
  // After a device loss: a new device, and the weights read from the store again (they were verified just now or
  // before, so not again).
  engine.watchDevice(async () => {
    const next = await reopenGpu(engine.gpu);
    return { gpu: next, model: await openModel(next, { ...options, signal: undefined }, manifest, fit.contextLength, false, () => {}) };
  });
  return engine;
}

/** Loads the weights onto `gpu` and builds the model; a failed allocation is a GpuOutOfMemoryError. */
async function openModel(
  gpu: Gpu,
  options: EngineOptions,
  manifest: Manifest,
  contextLength: number,
  verify: boolean,
  onProgress: (p: LoadProgress) => void,
): Promise<LlamaModel> {
  const { store, model: id, signal } = options;
  const tensors = await loadWeights(gpu, store, id, manifest, { signal, verify, onProgress });
  gpu.device.pushErrorScope('out-of-memory');
  let model: LlamaModel | undefined;
  let failure: unknown;
  try {
    model = new LlamaModel(gpu, manifest.config, tensors, { contextLength, prefillChunk: options.prefillChunk, source: id });
  } catch (e) {
    failure = e;
  }
  const oom = await gpu.device.popErrorScope();
  if (oom || !model) {
    if (model) model.destroy(); // its weights too
    else for (const w of tensors.values()) for (const c of w.chunks) (c.data.destroy(), c.scales?.destroy());
    if (!oom) throw failure;
    throw new GpuOutOfMemoryError(
      `The GPU ran out of memory for the KV cache and activations of model "${id}" (context ${contextLength} tokens): ${oom.message}. ` +
        'Pass a smaller contextLength, close other GPU-heavy tabs or apps, or choose a smaller model.',
    );
  }
  await gpu.device.queue.onSubmittedWorkDone();
  return model;
}

/** A device like `old` after it was lost. An adapter opens one device only, so a new adapter is requested first. */
async function reopenGpu(old: Gpu): Promise<Gpu> {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  let adapter: GPUAdapter | null;
  if (nav?.gpu) {
    adapter = await nav.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } else {
    const { adapterKind, nodeAdapter } = await import('./gpu/node.ts');
    const kind = adapterKind(old.summary);
    adapter = await nodeAdapter(kind === 'llvmpipe' || kind === 'swiftshader' ? kind : 'default');
  }
  if (!adapter) {
    throw new WebGpuUnavailableError('The GPU device was lost and no GPU adapter is available to replace it. Check that hardware acceleration is on, then reload the page.');
  }
  const gpu = await Gpu.create(adapter, { f16: old.f16, busyWaits: old.busyWaits });
  gpu.device.onuncapturederror = old.device.onuncapturederror;
  return gpu;
}
