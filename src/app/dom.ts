/**
 * Small DOM helpers. Every string reaches the page through textContent or an attribute, never innerHTML, so model
 * output and file names are always shown as text.
 */
type Attrs = Record<string, string | number | boolean | undefined>;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') node.className = String(v);
    else if (k === 'text') node.textContent = String(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`index.html has no element #${id}`);
  return node as T;
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n < 10 && i > 0 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

/** A labelled progress bar for one long task (download, conversion, GPU upload). */
export class ProgressRow {
  readonly root: HTMLDivElement;
  private readonly label: HTMLSpanElement;
  private readonly bar: HTMLProgressElement;

  constructor(parent: HTMLElement, title: string, testId: string) {
    this.label = el('span', { text: title });
    this.bar = el('progress', { max: 1, value: 0 });
    this.root = el('div', { class: 'task', 'data-testid': testId }, this.label, this.bar);
    parent.append(this.root);
  }

  /** `fraction` null: a step whose share done is unknown (the bar shows activity, not a percentage). */
  update(fraction: number | null, text: string): void {
    if (fraction === null) this.bar.removeAttribute('value');
    else this.bar.value = Math.max(0, Math.min(1, fraction));
    this.label.textContent = text;
  }

  fail(text: string): void {
    this.root.classList.add('failed');
    this.label.textContent = text;
    this.bar.remove();
  }

  remove(): void {
    this.root.remove();
  }
}
