/**
 * The model manager panel: installed models with their sizes, storage used against the browser's quota, delete,
 * and the three ways to install (a sample model the server offers, a URL of a package or a checkpoint, a dropped
 * checkpoint file).
 */
import type { InstalledModel, ModelStore } from '../storage/store.ts';
import type { StoreWorkerClient, TaskProgress } from '../worker/store-client.ts';
import { convertedModelId } from '../worker/store-client.ts';
import { checkConvertQuant, type ConvertQuant } from '../formats/quant-plan.ts';
import { importModelId } from '../storage/url-id.ts';
import { byId, el, formatBytes, ProgressRow } from './dom.ts';
import { clearBanner, describeError, showBanner } from './errors-view.ts';

/** A model the server offers as a package under /models/<id>/ (see scripts/models-plugin.ts). */
export interface SampleModel {
  id: string;
  name: string;
  source: string;
}

export interface ModelManagerEvents {
  onUse(id: string): void;
  onDeleted(id: string): void;
  onInstalled(id: string): void;
  /** An installed model is about to be overwritten by a new install of the same id: stop using it. */
  onReplacing(id: string): Promise<void>;
}

export class ModelManager {
  private active: string | null = null;
  /** Without WebGPU models can be installed and deleted but not loaded. */
  gpuAvailable = true;
  private installed: InstalledModel[] = [];
  private samples: SampleModel[] = [];
  private readonly list = byId<HTMLUListElement>('installed');
  private readonly tasks = byId('tasks');

  constructor(
    private readonly store: ModelStore,
    private readonly installer: StoreWorkerClient,
    private readonly events: ModelManagerEvents,
  ) {
    byId<HTMLFormElement>('url-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = byId<HTMLInputElement>('url-input');
      const tokenizer = byId<HTMLInputElement>('tokenizer-url-input').value.trim();
      if (input.value) void this.importUrl(input.value, tokenizer || undefined);
    });
    const drop = byId('drop-zone');
    const picker = byId<HTMLInputElement>('file-input');
    // The zone is a button for the keyboard: Tab reaches it, Enter or Space opens the file picker.
    drop.addEventListener('click', () => picker.click());
    drop.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        picker.click();
      }
    });
    picker.addEventListener('change', () => {
      if (picker.files?.length) void this.convert([...picker.files]);
      picker.value = '';
    });
    drop.addEventListener('dragover', (ev) => {
      ev.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (ev) => {
      ev.preventDefault();
      drop.classList.remove('over');
      const files = [...(ev.dataTransfer?.files ?? [])];
      if (files.length) void this.convert(files);
    });
  }

  get models(): InstalledModel[] {
    return this.installed;
  }

  setActive(id: string | null): void {
    this.active = id;
    this.render();
  }

  async refresh(): Promise<void> {
    try {
      this.installed = await this.store.list();
    } catch (e) {
      showBanner(`The model store could not be read: ${describeError(e)}`);
      this.installed = [];
    }
    this.render();
    this.renderSamples();
    await this.renderStorage();
  }

  private render(): void {
    this.list.replaceChildren();
    if (this.installed.length === 0) {
      this.list.append(el('li', { class: 'muted', text: 'No models installed yet.' }));
      return;
    }
    for (const m of this.installed) {
      const use = el('button', { type: 'button', text: this.active === m.id ? 'In use' : 'Use', 'data-action': 'use' });
      use.disabled = this.active === m.id || !this.gpuAvailable;
      if (!this.gpuAvailable) use.title = 'This browser has no WebGPU, so models cannot run here.';
      use.addEventListener('click', () => this.events.onUse(m.id));
      const del = el('button', { type: 'button', class: 'secondary', text: 'Delete', 'data-action': 'delete' });
      del.addEventListener('click', () => void this.remove(m));
      const quant = m.manifest.tensors.find((t) => t.name.endsWith('.wq'))?.dtype ?? '';
      this.list.append(
        el(
          'li',
          { 'data-model-id': m.id, class: this.active === m.id ? 'active' : undefined },
          el('span', { class: 'name', text: m.name === m.id ? m.id : `${m.name} (${m.id})` }),
          el('span', { class: 'muted', text: `${formatBytes(m.bytes)} ${quant}` }),
          use,
          del,
        ),
      );
    }
  }

  private async renderStorage(): Promise<void> {
    const used = this.installed.reduce((n, m) => n + m.bytes, 0);
    const line = byId('storage');
    const bar = byId<HTMLProgressElement>('storage-bar');
    const est = await navigator.storage?.estimate?.().catch(() => undefined);
    if (est?.quota) {
      line.textContent = `Models use ${formatBytes(used)}; this site stores ${formatBytes(est.usage ?? 0)} of ${formatBytes(est.quota)} available.`;
      bar.value = Math.min(1, (est.usage ?? 0) / est.quota);
    } else {
      line.textContent = `Models use ${formatBytes(used)}.`;
      bar.hidden = true;
    }
  }

  private async remove(m: InstalledModel): Promise<void> {
    if (!confirm(`Delete ${m.id} (${formatBytes(m.bytes)}) from this browser?`)) return;
    try {
      if (this.active === m.id) this.events.onDeleted(m.id);
      await this.store.delete(m.id);
    } catch (e) {
      showBanner(`Deleting ${m.id} failed: ${describeError(e)}`);
    }
    await this.refresh();
  }

  /** Lists the sample models the serving machine offers; nothing is shown when offline or on a plain static host. */
  async loadSamples(): Promise<void> {
    try {
      const res = await fetch('/models/index.json', { cache: 'no-store' });
      this.samples = res.ok ? (((await res.json()) as { models?: SampleModel[] }).models ?? []) : [];
    } catch {
      this.samples = [];
    }
    this.renderSamples();
  }

  private renderSamples(): void {
    const box = byId('samples');
    box.replaceChildren();
    if (this.samples.length === 0) return;
    box.append(el('p', { class: 'muted', text: 'Sample models from this server:' }));
    for (const s of this.samples) {
      const have = this.installed.some((m) => m.id === s.id);
      const b = el('button', { type: 'button', class: 'secondary', text: have ? `${s.name} is installed` : `Install ${s.name}`, 'data-sample': s.id });
      b.disabled = have;
      b.addEventListener('click', () => void this.installUrl(`/models/${encodeURIComponent(s.id)}/`, s.name, s.id));
      box.append(el('div', { class: 'row' }, b));
    }
  }

  private track(title: string, testId: string): { row: ProgressRow; onProgress: (p: TaskProgress) => void } {
    const row = new ProgressRow(this.tasks, title, testId);
    const onProgress = (p: TaskProgress) => {
      const verb = p.phase === 'download' ? 'Downloading' : 'Converting';
      row.update(p.fraction, `${verb} ${title}: ${Math.round(p.fraction * 100)}% (${formatBytes(p.bytes)}) ${p.detail}`);
    };
    return { row, onProgress };
  }

  /** Installs a sample model's package. */
  installUrl(url: string, title: string, sampleId: string): Promise<void> {
    return this.install(title, sampleId, (onProgress) => this.installer.installFromUrl(url, { modelId: sampleId, onProgress }));
  }

  /**
   * Imports what a typed URL points at (importFromUrl): a model package, a .gguf file, a Hugging Face folder or
   * repository, or a llama2.c .bin with its tokenizer's URL. Checkpoints are converted to the chosen weight format.
   */
  importUrl(url: string, tokenizer?: string): Promise<void> {
    let modelId: string;
    try {
      modelId = importModelId(url);
    } catch (e) {
      showBanner(`${url} is not a URL: ${describeError(e)}`);
      return Promise.resolve();
    }
    return this.install(url, modelId, (onProgress) => this.installer.importFromUrl(url, { modelId, onProgress, quant: quantChoice(), tokenizer }));
  }

  /**
   * Runs one install task (a download, an import or a conversion) under a progress row, after confirmReplace;
   * `converting` names the row and its failure as a conversion.
   */
  private async install(title: string, modelId: string, run: (onProgress: (p: TaskProgress) => void) => Promise<string>, converting = false): Promise<void> {
    if (!(await this.confirmReplace(modelId))) return;
    const { row, onProgress } = this.track(title, converting ? 'convert-progress' : 'download-progress');
    try {
      const id = await run(onProgress);
      row.remove();
      clearBanner();
      await persistStorage();
      await this.refresh();
      this.events.onInstalled(id);
    } catch (e) {
      row.fail(`${converting ? 'Converting' : 'Installing'} ${title} failed.`);
      showBanner(describeError(e));
      await this.refresh();
    }
  }

  /**
   * Asks before a new install overwrites the installed model `id`, saying so when it is the one in use; stops
   * using it when the person agrees. False: leave everything as it is.
   */
  private async confirmReplace(id: string): Promise<boolean> {
    const existing = this.installed.find((m) => m.id === id);
    if (!existing) return true;
    const inUse = this.active === id ? ' It is the model in use; it will be unloaded first.' : '';
    if (!confirm(`A model named ${id} (${formatBytes(existing.bytes)}) is already installed.${inUse} Replace it with the new one?`)) return false;
    await this.events.onReplacing(id);
    return true;
  }

  async convert(files: File[]): Promise<void> {
    const title = files.map((f) => f.name).join(' + ');
    const modelId = convertedModelId(files);
    await this.install(title, modelId, (onProgress) => this.installer.convertFiles(files, { modelId, onProgress, quant: quantChoice() }), true);
  }
}

/**
 * Persistent storage keeps the browser from evicting installed models under storage pressure. Only a page can ask
 * for it (StorageManager.persist does not exist in workers), so the page asks after each install.
 */
async function persistStorage(): Promise<void> {
  await navigator.storage?.persist?.().catch(() => false);
}

/** The chosen weight format; undefined (Automatic): a quantized GGUF keeps its blocks, anything else becomes q8. */
function quantChoice(): ConvertQuant | undefined {
  const v = (document.getElementById('quant') as HTMLSelectElement | null)?.value ?? 'auto';
  return v === 'auto' ? undefined : checkConvertQuant(v);
}
