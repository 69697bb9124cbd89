/** Messages between a page and the store worker (store-worker.ts): installs and conversions off the main thread. */
import type { ConvertQuant } from '../formats/quant-plan.ts';
import type { WireError } from './protocol.ts';

/** Progress of an install or a conversion; `fraction` is 0..1 of the bytes (download) or elements (conversion). */
export interface TaskProgress {
  phase: 'download' | 'convert';
  fraction: number;
  /** What is being worked on: a file or a tensor name. */
  detail: string;
  bytes: number;
}

export type ToStoreWorker =
  | { type: 'install-url'; id: number; storeName?: string; url: string; modelId?: string }
  | { type: 'import-url'; id: number; storeName?: string; url: string; modelId?: string; quant?: ConvertQuant; tokenizer?: string }
  | { type: 'convert-files'; id: number; storeName?: string; files: File[]; modelId?: string; quant?: ConvertQuant }
  | { type: 'abort'; id: number };

export type FromStoreWorker =
  | { type: 'progress'; id: number; progress: TaskProgress }
  | { type: 'done'; id: number; modelId: string }
  | { type: 'error'; id: number; error: WireError };
