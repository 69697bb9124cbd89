/**
 * Turns any failure into a sentence a person can act on, and shows it in the page's banner. The banner has a
 * close button, and clearBanner() takes a stale error down when a later action succeeds.
 */
import { byId } from './dom.ts';

/**
 * The library's messages are shared with the command line. There a tokenizer is given with --tokenizer and the
 * weight format with --quant; on the page the same fixes are picking or dropping the tokenizer together with the
 * weights, and the "Weights after conversion" choice.
 */
const BROWSER_WORDING: [RegExp, string][] = [
  [/ \(--tokenizer\)/g, ' (pick or drop it together with the weights)'],
  [/ or pass it with --tokenizer/g, ' or pick or drop it together with the weights'],
  [/; check the --tokenizer path/g, '; pick or drop the tokenizer file together with the weights'],
  [/--quant /g, 'weight format '],
];

export function browserWording(message: string): string {
  return BROWSER_WORDING.reduce((m, [pattern, text]) => m.replace(pattern, text), message);
}

export function describeError(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  const name = (e as { name?: unknown })?.name;
  const message = browserWording(e instanceof Error ? e.message : String(e));
  if (code === 'STORAGE_QUOTA') return `Storage is full. ${message}`;
  if (name === 'QuotaExceededError') {
    return `Storage is full: the browser refused to store more data${message ? ` (${message})` : ''}. Delete a model in the model manager or free disk space, then try again.`;
  }
  if (code === 'MODEL_DOES_NOT_FIT') return `${message} Choose a smaller or more strongly quantized model (q4).`;
  if (code === 'WEBGPU_UNAVAILABLE') return message;
  if (name === 'AbortError') return 'Cancelled.';
  return message;
}

let closeWired = false;

export function showBanner(text: string, kind: 'error' | 'info' = 'error'): void {
  const banner = byId('banner');
  if (!closeWired) {
    closeWired = true;
    byId('banner-close').addEventListener('click', hideBanner);
  }
  byId('banner-text').textContent = text;
  banner.className = kind === 'error' ? 'banner' : 'banner info';
  banner.dataset.kind = kind;
  delete banner.dataset.sticky;
  banner.hidden = false;
}

export function hideBanner(): void {
  byId('banner').hidden = true;
}

/**
 * Takes down an error left by an earlier failure once something succeeds. Advice that stays true (WebGPU missing)
 * is shown with `sticky` and stays until closed.
 */
export function clearBanner(): void {
  const banner = byId('banner');
  if (banner.dataset.sticky !== 'true') banner.hidden = true;
}

export function showStickyBanner(text: string): void {
  showBanner(text);
  byId('banner').dataset.sticky = 'true';
}
