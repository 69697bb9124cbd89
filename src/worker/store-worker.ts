/**
 * Installs and conversions in a Web Worker: downloading, hashing and converting a checkpoint are long CPU- and
 * IO-bound loops, and here they never stall the page's rendering or a running generation.
 */
/// <reference lib="webworker" />
import { LlamaWebGpuError } from '../errors.ts';
import { openDroppedFiles } from './open-files.ts';
import { hasQuantizedGgufTensors } from '../formats/keep.ts';
import { convertCheckpoint } from '../formats/package-writer.ts';
import { createIdbStore } from '../storage/idb-store.ts';
import { importFromUrl } from '../storage/import.ts';
import { installFromUrl } from '../storage/install.ts';
import { toWireError } from './protocol.ts';
import { checkpointStem, convertedModelId } from './store-client.ts';
import type { FromStoreWorker, ToStoreWorker } from './store-protocol.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;
const controllers = new Map<number, AbortController>();

function post(m: FromStoreWorker): void {
  scope.postMessage(m);
}

async function handle(msg: ToStoreWorker): Promise<void> {
  if (msg.type === 'abort') {
    controllers.get(msg.id)?.abort();
    return;
  }
  const { id } = msg;
  const controller = new AbortController();
  controllers.set(id, controller);
  try {
    const store = createIdbStore(msg.storeName);
    if (msg.type === 'install-url') {
      const installed = await installFromUrl(store, msg.url, {
        id: msg.modelId,
        signal: controller.signal,
        onProgress: (p) =>
          post({
            type: 'progress',
            id,
            progress: {
              phase: 'download',
              fraction: p.phase === 'done' ? 1 : p.totalBytes ? p.loadedBytes / p.totalBytes : 0,
              detail: p.file ?? p.phase,
              bytes: p.loadedBytes,
            },
          }),
      });
      post({ type: 'done', id, modelId: installed.id });
    } else if (msg.type === 'import-url') {
      const imported = await importFromUrl(store, msg.url, {
        id: msg.modelId,
        // No weight format chosen: a quantized GGUF keeps its blocks, anything else becomes q8.
        quant: msg.quant,
        unquantized: 'q8',
        tokenizer: msg.tokenizer,
        signal: controller.signal,
        onProgress: (p) =>
          post({
            type: 'progress',
            id,
            progress: { phase: 'convert', fraction: p.phase === 'done' ? 1 : p.total ? p.done / p.total : 0, detail: p.tensor ?? p.phase, bytes: p.downloadedBytes },
          }),
      });
      post({ type: 'done', id, modelId: imported.id });
    } else {
      if (msg.files.length === 0) throw new LlamaWebGpuError('NO_FILES', 'No files were given; pick or drop a model file.');
      const ckpt = await openDroppedFiles(msg.files);
      try {
        const stem = checkpointStem(msg.files[0].name);
        const modelId = msg.modelId ?? convertedModelId(msg.files);
        // Under the id's lock, as an install: another tab writing this id waits instead of mixing its files in.
        await store.lock(
          modelId,
          () =>
            convertCheckpoint(ckpt, store.sink(modelId), {
              quant: msg.quant ?? (hasQuantizedGgufTensors(ckpt) ? 'keep' : 'q8'),
              name: stem,
              signal: controller.signal,
              onProgress: (p) =>
                post({ type: 'progress', id, progress: { phase: 'convert', fraction: p.total ? p.done / p.total : 0, detail: p.tensor, bytes: p.bytes } }),
            }),
          controller.signal,
        );
        post({ type: 'done', id, modelId });
      } finally {
        await ckpt.close();
      }
    }
  } catch (e) {
    post({ type: 'error', id, error: toWireError(e) });
  } finally {
    controllers.delete(id);
  }
}

scope.onmessage = (ev: MessageEvent<ToStoreWorker>) => {
  void handle(ev.data);
};
