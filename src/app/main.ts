/**
 * The chat page: checks WebGPU, lists and installs models, loads the chosen one into a worker engine, and chats.
 */
import { createIdbStore } from '../storage/idb-store.ts';
import type { EngineProgress } from '../engine.ts';
import { createWorkerEngine, type WorkerEngine } from '../worker/client.ts';
import { StoreWorkerClient } from '../worker/store-client.ts';
import { ChatView } from './chat-view.ts';
import { ConversationStore } from './conversations.ts';
import { byId, formatBytes, ProgressRow } from './dom.ts';
import { clearBanner, describeError, showBanner, showStickyBanner } from './errors-view.ts';
import { checkWebGpu } from './gpu-check.ts';
import { ModelManager } from './model-manager.ts';
import { registerServiceWorker } from './register-sw.ts';

const LAST_MODEL_KEY = 'llama-webgpu.lastModel';

/** What a load is doing, in words: the weights upload has a share done; the other phases are single steps. */
function loadPhaseText(id: string, p: EngineProgress): { text: string; fraction: number | null } {
  if (p.phase === 'tokenizer') return { text: `Loading ${id}: reading the tokenizer…`, fraction: null };
  if (p.phase === 'weights') {
    return { text: `Loading ${id}: uploading weights to the GPU, ${Math.round(p.fraction * 100)}% of ${formatBytes(p.totalBytes)}`, fraction: p.fraction };
  }
  if (p.phase === 'compile') return { text: `Loading ${id}: preparing the GPU pipelines…`, fraction: null };
  return { text: `Loading ${id}: ready`, fraction: 1 };
}

/** On a phone-sized screen the side panels start folded, so the conversation and the composer fill the screen. */
function foldPanelsOnSmallScreens(): void {
  if (!matchMedia('(max-width: 900px)').matches) return;
  for (const d of document.querySelectorAll<HTMLDetailsElement>('details.panel')) d.open = false;
}

async function main(): Promise<void> {
  registerServiceWorker();
  foldPanelsOnSmallScreens();
  const store = createIdbStore();
  const chat = new ChatView(new ConversationStore());
  let engine: WorkerEngine | null = null;
  let loading: AbortController | null = null;
  let gpuOk = false;

  const unload = async () => {
    loading?.abort();
    const e = engine;
    engine = null;
    chat.setEngine(null);
    manager.setActive(null);
    const status = byId('load-status');
    status.replaceChildren();
    delete status.dataset.ready;
    await e?.unload().catch(() => e.terminate());
  };

  const use = async (id: string) => {
    if (!gpuOk) return;
    await unload();
    const status = byId('load-status');
    status.replaceChildren();
    const row = new ProgressRow(status, `Loading ${id} onto the GPU…`, 'gpu-progress');
    const controller = new AbortController();
    loading = controller;
    try {
      const e = await createWorkerEngine({
        model: id,
        signal: controller.signal,
        onProgress: (p) => {
          const { text, fraction } = loadPhaseText(id, p);
          row.update(fraction, text);
          row.root.dataset.phase = p.phase;
        },
      });
      if (controller.signal.aborted) {
        e.terminate();
        return;
      }
      engine = e;
      const template = manager.models.find((m) => m.id === id)?.manifest.config.chatTemplate ?? 'none';
      chat.setEngine(e, template);
      manager.setActive(id);
      localStorage.setItem(LAST_MODEL_KEY, id);
      row.update(1, `${id} is ready (loaded in ${(e.stats().loadMs / 1000).toFixed(1)} s).`);
      status.dataset.ready = id;
      clearBanner();
    } catch (err) {
      if (controller.signal.aborted) return;
      row.fail(`Loading ${id} failed.`);
      showBanner(describeError(err));
    } finally {
      if (loading === controller) loading = null;
    }
  };

  const manager = new ModelManager(store, new StoreWorkerClient(), {
    onUse: (id) => void use(id),
    onInstalled: (id) => {
      if (gpuOk && !engine && !loading) void use(id);
    },
    onDeleted: () => void unload(),
    onReplacing: async (id) => {
      // Its shards are about to be rewritten: a loaded engine or a load in progress must let go of them first.
      if (engine?.modelId === id || loading) await unload();
    },
  });

  const gpu = await checkWebGpu();
  gpuOk = gpu.ok;
  manager.gpuAvailable = gpu.ok;
  byId('gpu-status').textContent = gpu.ok ? gpu.adapter : 'WebGPU unavailable';
  if (!gpu.ok) {
    showStickyBanner(gpu.message);
    document.body.dataset.webgpu = 'missing';
  } else document.body.dataset.webgpu = 'ok';

  await Promise.all([manager.refresh(), manager.loadSamples(), chat.init()]);
  const last = localStorage.getItem(LAST_MODEL_KEY);
  if (gpuOk && last && manager.models.some((m) => m.id === last)) void use(last);
  document.body.dataset.ready = 'true';
}

main().catch((e) => showBanner(`The page failed to start: ${describeError(e)}`));
