/** Browser test page: tokenizes on the main thread, or in a module worker (where there is no `document`). */
import { tokenizeAll, type Tokenized } from './tokenize-all.ts';

declare global {
  interface Window {
    tokenizeInPage(modelUrl: string, texts: string[]): Promise<Tokenized[]>;
    tokenizeInWorker(modelUrl: string, texts: string[]): Promise<Tokenized[]>;
  }
}

window.tokenizeInPage = tokenizeAll;
window.tokenizeInWorker = (modelUrl, texts) =>
  new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
    worker.onmessage = (e: MessageEvent<{ result?: Tokenized[]; error?: string }>) => {
      worker.terminate();
      if (e.data.error !== undefined) reject(new Error(e.data.error));
      else resolve(e.data.result!);
    };
    worker.onerror = (e) => reject(new Error(`worker failed: ${e.message}`));
    worker.postMessage({ modelUrl: new URL(modelUrl, location.href).href, texts });
  });
document.body.dataset.ready = 'true';
