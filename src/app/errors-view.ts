/** Turns any failure into a sentence a person can act on, and shows it in the page's banner. */
import { byId } from './dom.ts';

export function describeError(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  const name = (e as { name?: unknown })?.name;
  const message = e instanceof Error ? e.message : String(e);
  if (code === 'STORAGE_QUOTA') return `Storage is full. ${message}`;
  if (name === 'QuotaExceededError') {
    return `Storage is full: the browser refused to store more data${message ? ` (${message})` : ''}. Delete a model in the model manager or free disk space, then try again.`;
  }
  if (code === 'MODEL_DOES_NOT_FIT') return `${message} Choose a smaller or more strongly quantized model (q4).`;
  if (code === 'WEBGPU_UNAVAILABLE') return message;
  if (name === 'AbortError') return 'Cancelled.';
  return message;
}

export function showBanner(text: string, kind: 'error' | 'info' = 'error'): void {
  const banner = byId('banner');
  banner.textContent = text;
  banner.className = kind === 'error' ? 'banner' : 'banner info';
  banner.hidden = false;
}

export function hideBanner(): void {
  byId('banner').hidden = true;
}
