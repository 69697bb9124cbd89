/**
 * The engine inside a dedicated Web Worker: loading, prefill and decode run here so the page's main thread only
 * receives text. One engine per worker; requests queue inside the engine in arrival order.
 */
/// <reference lib="webworker" />
import { createEngine, type Engine } from '../engine.ts';
import type { ScoreProgress } from '../engine-types.ts';
import { LlamaWebGpuError } from '../errors.ts';
import { idleStats } from '../generate/stats.ts';
import { createIdbStore } from '../storage/idb-store.ts';
import { toWireError, type FromWorker, type ToWorker } from './protocol.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;
let engine: Engine | null = null;
const controllers = new Map<number, AbortController>();

function post(m: FromWorker): void {
  scope.postMessage(m);
}

function requireEngine(): Engine {
  if (!engine) throw new LlamaWebGpuError('ENGINE_NOT_LOADED', 'The worker has no model loaded yet; wait for createWorkerEngine() to resolve.');
  return engine;
}

async function handle(msg: ToWorker): Promise<void> {
  if (msg.type === 'abort') {
    controllers.get(msg.id)?.abort();
    return;
  }
  const controller = new AbortController();
  controllers.set(msg.id, controller);
  const { id } = msg;
  try {
    switch (msg.type) {
      case 'load': {
        if (engine) throw new LlamaWebGpuError('ENGINE_ALREADY_LOADED', 'This worker already holds a model; create another worker engine for a second model.');
        const store = createIdbStore(msg.options.storeName);
        engine = await createEngine({
          model: msg.options.model,
          store,
          contextLength: msg.options.contextLength,
          prefillChunk: msg.options.prefillChunk,
          verify: msg.options.verify,
          signal: controller.signal,
          onProgress: (progress) => post({ type: 'progress', id, progress }),
        });
        post({ type: 'done', id, stats: engine.stats(), load: { modelId: engine.modelId, stats: engine.stats() } });
        break;
      }
      case 'generate': {
        const run = requireEngine().generate(msg.prompt, { ...msg.options, signal: controller.signal });
        for await (const delta of run) post({ type: 'delta', id, delta });
        post({ type: 'done', id, stats: await run.result });
        break;
      }
      case 'chat': {
        const e = requireEngine();
        if (msg.request.stream) {
          const stream = await e.chat.completions.create({ ...msg.request, stream: true, signal: controller.signal });
          for await (const chunk of stream) post({ type: 'chunk', id, chunk });
          post({ type: 'done', id, stats: e.stats() });
        } else {
          const completion = await e.chat.completions.create({ ...msg.request, stream: false, signal: controller.signal });
          post({ type: 'done', id, stats: e.stats(), completion });
        }
        break;
      }
      case 'tokenize': {
        const e = requireEngine();
        post({ type: 'done', id, stats: e.stats(), tokenIds: await e.tokenize(msg.text, msg.options) });
        break;
      }
      case 'detokenize': {
        const e = requireEngine();
        post({ type: 'done', id, stats: e.stats(), text: await e.detokenize(msg.ids) });
        break;
      }
      case 'tokenizeChat': {
        const e = requireEngine();
        post({ type: 'done', id, stats: e.stats(), tokenIds: await e.tokenizeChat(msg.messages) });
        break;
      }
      case 'score': {
        const e = requireEngine();
        const onProgress = msg.progress ? (progress: ScoreProgress) => post({ type: 'scoreProgress', id, progress }) : undefined;
        const score = await e.score(msg.text, { signal: controller.signal, onProgress });
        post({ type: 'done', id, stats: e.stats(), score });
        break;
      }
      case 'unload': {
        const e = engine;
        engine = null;
        if (e) await e.unload();
        post({ type: 'done', id, stats: e?.stats() ?? idleStats(0, 0, 0) });
        break;
      }
    }
  } catch (e) {
    post({ type: 'error', id, error: toWireError(e) });
  } finally {
    controllers.delete(id);
  }
}

scope.onmessage = (ev: MessageEvent<ToWorker>) => {
  void handle(ev.data);
};
