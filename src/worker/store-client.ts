/**
 * The page's side of the store worker: install a model package from a URL, or convert picked files, without
 * blocking the page. Both write into the IndexedDB model store that createIdbStore() and the engine read.
 */
import { checkConvertQuant, type ConvertQuant } from '../formats/quant-plan.ts';
import { fromWireError } from './protocol.ts';
import { modelIdFrom } from '../storage/package-check.ts';
import type { FromStoreWorker, TaskProgress, ToStoreWorker } from './store-protocol.ts';

export type { TaskProgress } from './store-protocol.ts';

export interface StoreTaskOptions {
  storeName?: string;
  /** Model id in the store; default derived from the URL or file name. */
  modelId?: string;
  onProgress?: (p: TaskProgress) => void;
  signal?: AbortSignal;
}

/**
 * Options of a conversion: `quant` is any of CONVERT_QUANTS, as `convert --quant` takes it; without it a quantized
 * GGUF keeps its blocks and anything else becomes q8.
 */
export interface StoreConvertOptions extends StoreTaskOptions {
  quant?: ConvertQuant;
}

/** A checkpoint file's name without its weights extension: the converted model's name. */
export function checkpointStem(fileName: string): string {
  return fileName.replace(/\.(gguf|safetensors|bin|msgpack)$/i, '');
}

/** The id convertFiles() installs `files` under when no modelId is given (from the first file's name). */
export function convertedModelId(files: { name: string }[]): string {
  return modelIdFrom(checkpointStem(files[0]?.name ?? 'model'));
}

/** The package folder of a package URL (the folder itself, or its manifest.json). */
function packageFolder(url: string): string {
  return new URL(url.replace(/manifest\.json([?#].*)?$/, ''), location.href).href;
}

export class StoreWorkerClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private pending = new Map<number, (m: FromStoreWorker) => void>();

  private get w(): Worker {
    if (!this.worker) {
      this.worker = new Worker(new URL('./store-worker.ts', import.meta.url), { type: 'module', name: 'llama-webgpu-store' });
      this.worker.onmessage = (ev: MessageEvent<FromStoreWorker>) => this.pending.get(ev.data.id)?.(ev.data);
      this.worker.onerror = (ev) => {
        ev.preventDefault();
        for (const done of this.pending.values()) {
          done({ type: 'error', id: 0, error: { name: 'LlamaWebGpuError', code: 'WORKER_ERROR', message: `The install worker crashed: ${ev.message || 'script error'}. Reload the page.` } });
        }
        this.pending.clear();
        this.worker?.terminate();
        this.worker = null;
      };
    }
    return this.worker;
  }

  private run(build: (id: number) => ToStoreWorker, options: StoreTaskOptions): Promise<string> {
    const id = this.nextId++;
    const worker = this.w;
    return new Promise((resolve, reject) => {
      const onAbort = () => worker.postMessage({ type: 'abort', id } satisfies ToStoreWorker);
      this.pending.set(id, (m) => {
        if (m.type === 'progress') return options.onProgress?.(m.progress);
        this.pending.delete(id);
        options.signal?.removeEventListener('abort', onAbort);
        if (m.type === 'done') resolve(m.modelId);
        else reject(fromWireError(m.error));
      });
      worker.postMessage(build(id));
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Downloads a model package into the store: `url` is the package folder or its manifest.json. Resolves to the
   * installed model id.
   */
  installFromUrl(url: string, options: StoreTaskOptions = {}): Promise<string> {
    const abs = packageFolder(url);
    return this.run((id) => ({ type: 'install-url', id, url: abs, storeName: options.storeName, modelId: options.modelId }), options);
  }

  /**
   * Converts a checkpoint at a URL (a .gguf file, a llama2.c .bin with `tokenizer`, a Hugging Face folder or
   * repository; a model package is installed as it is) into the store, streaming it with Range requests
   * (importFromUrl). Resolves to the model id.
   */
  async importFromUrl(url: string, options: StoreConvertOptions & { tokenizer?: string } = {}): Promise<string> {
    if (options.quant !== undefined) checkConvertQuant(options.quant);
    const abs = new URL(url, location.href).href;
    const tokenizer = options.tokenizer && new URL(options.tokenizer, abs).href;
    return this.run((id) => ({ type: 'import-url', id, url: abs, storeName: options.storeName, modelId: options.modelId, quant: options.quant, tokenizer }), options);
  }

  /** Converts a checkpoint (with its companion files) into a package in the store; resolves to the model id. */
  async convertFiles(files: File[], options: StoreConvertOptions = {}): Promise<string> {
    if (options.quant !== undefined) checkConvertQuant(options.quant);
    return this.run(
      (id) => ({ type: 'convert-files', id, files, storeName: options.storeName, modelId: options.modelId, quant: options.quant }),
      options,
    );
  }
}
