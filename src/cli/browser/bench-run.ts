/**
 * A model package through the page path in Chromium, measured: the built library is served with the package on
 * 127.0.0.1; the page installs the package into IndexedDB with installFromUrl, loads it with createWorkerEngine
 * (a Web Worker streams the shards onto the GPU) while the DevTools protocol samples the JavaScript memory of the
 * page and the worker, then decodes greedily.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import type { EngineStats } from '../../engine.ts';
import { errorFromCode, type LlamaWebGpuError } from '../../errors.ts';
import type { AdapterSummary } from '../../gpu/device.ts';
import type { Manifest } from '../../formats/manifest.ts';
import { launchChromiumProfile, type BrowserAdapter } from './chromium.ts';
import { HeapMonitor, type HeapPeak } from './heap.ts';
import { buildLibrary, engineWorkerPath, serveLibrary } from './serve.ts';

/** The IndexedDB database the benchmark installs into (createIdbStore's name); the browser profile is temporary. */
const STORE = 'llama-webgpu-bench';

export interface BrowserBenchOptions {
  packageDir: string;
  adapter: BrowserAdapter;
  /** Prompt token ids, BOS first. */
  promptIds: number[];
  genTokens: number;
  /** One short greedy run before the measured one (default true), as `bench` does. */
  warmup?: boolean;
  contextLength?: number;
  /** Progress lines (what is happening now). */
  onStatus?: (line: string) => void;
}

export interface BrowserBenchResult {
  model: string;
  /** The Chromium asked for. */
  adapter: BrowserAdapter;
  /** The adapter Chromium gave the page (adapter.info, shader-f16, limits). */
  adapterInfo: AdapterSummary;
  promptTokens: number;
  generatedTokens: number;
  ids: number[];
  text: string;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  decodeMsPerToken: number;
  dispatchesPerToken: number;
  encodeMsPerToken: number;
  packageMB: number;
  installMs: number;
  installMBps: number;
  /** createEngine's time inside the worker (tokenizer, weights onto the GPU, pipelines), as `bench` reports it. */
  loadMs: number;
  /** createWorkerEngine as the page waits for it, worker start included. */
  loadWallMs: number;
  /** Largest shard. */
  shardMB: number;
  /** Most shard bytes the loader held at once (its own count). */
  peakHeldMB: number;
  /** JS heap plus ArrayBuffer stores of the page and the engine worker: before the load, and the most during it. */
  peakJsHeapMB: number;
  peakJsHeapBaselineMB: number;
  heapSamples: number;
}

type Lib = typeof import('../../index.ts');
type WireError = { name: string; code?: string; message: string };
type Outcome<T> = { value: T; error?: undefined } | { error: WireError };

const MB = 2 ** 20;

/** Rebuilds an error the page reported: the class of its code, or its name under code BROWSER. */
function pageError(e: WireError): LlamaWebGpuError {
  const err = errorFromCode(e.code ?? 'BROWSER', e.message);
  if (!e.code) err.name = e.name;
  return err;
}

/** Runs `fn` in the page; an error it reports comes back thrown, as its LlamaWebGpuError class name and code. */
async function inPage<T, A>(page: Page, fn: (arg: A) => Promise<Outcome<T>>, arg: A): Promise<T> {
  const r = (await page.evaluate(fn as (arg: unknown) => Promise<unknown>, arg)) as Outcome<T>;
  if (r.error) throw pageError(r.error);
  return r.value;
}

export async function benchInBrowser(options: BrowserBenchOptions): Promise<BrowserBenchResult> {
  const { adapter: adapterKind, promptIds, genTokens } = options;
  const status = options.onStatus ?? (() => {});
  const dir = path.resolve(options.packageDir);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const id = path.basename(dir).replace(/[^A-Za-z0-9._-]/g, '_');
  const packageBytes = manifest.shards.reduce((n, s) => n + s.byteSize, manifest.tokenizer.byteSize);
  const shardBytes = Math.max(...manifest.shards.map((s) => s.byteSize));

  const work = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-bench-browser-'));
  const browser = await launchChromiumProfile(path.join(work, 'profile'), adapterKind);
  let server: Awaited<ReturnType<typeof serveLibrary>> | null = null;
  try {
    status('building the library');
    const libDir = path.join(work, 'lib');
    await buildLibrary(libDir);
    const workerScript = engineWorkerPath(libDir);
    server = await serveLibrary(libDir, { [id]: dir });
    const page = browser.pages()[0] ?? (await browser.newPage());
    const consoleErrors: string[] = [];
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    await page.goto(server.url);
    await page.waitForFunction(() => (window as unknown as { llamaReady?: boolean }).llamaReady === true);

    const adapter = await inPage<AdapterSummary, undefined>(page, async () => {
      const lib = (window as unknown as { llama: Lib }).llama;
      const a = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance' });
      if (!a) return { error: { name: 'WebGpuUnavailableError', code: 'WEBGPU_UNAVAILABLE', message: 'Chromium offers no WebGPU adapter.' } };
      return { value: lib.summarizeAdapter(a) };
    }, undefined);
    status(`adapter: ${describeAdapter(adapter)}`);

    // As a page should: the package must fit this GPU before gigabytes are downloaded for it.
    const contextLength = options.contextLength ?? Math.max(256, promptIds.length + genTokens + 1);
    await inPage<null, { url: string; id: string; contextLength: number }>(page, async ({ url, id, contextLength }) => {
      const lib = (window as unknown as { llama: Lib }).llama;
      const manifest = await (await fetch(url)).json();
      const a = (await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' }))!;
      const fit = lib.checkFit(manifest, a.limits, { f16: a.features.has('shader-f16') }, { contextLength });
      if (fit.fits) return { value: null };
      const e = new lib.ModelDoesNotFitError(id, fit.reasons);
      return { error: { name: e.name, code: e.code, message: e.message } };
    }, { url: `/pkg/${encodeURIComponent(id)}/manifest.json`, id, contextLength });

    status(`installing ${(packageBytes / MB).toFixed(1)} MB into IndexedDB`);
    const installMs = await inPage<number, { url: string; store: string }>(page, async ({ url, store }) => {
      const lib = (window as unknown as { llama: Lib }).llama;
      const t0 = performance.now();
      try {
        await lib.installFromUrl(lib.createIdbStore(store), url);
      } catch (e) {
        const err = e as Error & { code?: string };
        return { error: { name: err.name, code: err.code, message: err.message } };
      }
      return { value: performance.now() - t0 };
    }, { url: `/pkg/${encodeURIComponent(id)}/`, store: STORE });

    // The engine's worker is started first so that its memory is part of the baseline.
    const heap = await HeapMonitor.attach(page);
    await page.evaluate((script) => {
      (window as unknown as { engineWorker: Worker }).engineWorker = new Worker(script, { type: 'module', name: 'llama-webgpu-engine' });
    }, workerScript);
    const workerSession = await heap.waitForWorker(workerScript);
    for (let i = 0; !(await heap.evaluateInWorker<boolean>(workerSession, 'typeof self.onmessage === "function"')); i++) {
      if (i > 1000) throw new Error(`the engine worker ${workerScript} did not start`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await heap.collectGarbage();
    const baseline = await heap.usage();

    status('loading in the worker');
    heap.start();
    type Load = { stats: EngineStats; wallMs: number; peakHeldBytes: number };
    let load: Load;
    let peak: HeapPeak;
    try {
      load = await inPage<Load, { model: string; store: string; contextLength: number }>(page, async ({ model, store, contextLength }) => {
        const w = window as unknown as { llama: Lib; engineWorker: Worker; engine: unknown };
        const t0 = performance.now();
        let peakHeldBytes = 0;
        try {
          const engine = await w.llama.createWorkerEngine({
            model,
            storeName: store,
            contextLength,
            worker: w.engineWorker,
            onProgress: (p) => (peakHeldBytes = Math.max(peakHeldBytes, p.peakHeldBytes)),
          });
          w.engine = engine;
          return { value: { stats: engine.stats(), wallMs: performance.now() - t0, peakHeldBytes } };
        } catch (e) {
          const err = e as Error & { code?: string };
          return { error: { name: err.name, code: err.code, message: err.message } };
        }
      }, { model: id, store: STORE, contextLength });
    } finally {
      peak = await heap.stop();
      await heap.detach();
    }

    const generate = (maxTokens: number) =>
      inPage<{ ids: number[]; text: string; stats: EngineStats }, { prompt: number[]; maxTokens: number }>(page, async ({ prompt, maxTokens }) => {
        const engine = (window as unknown as { engine: InstanceType<Lib['WorkerEngine']> }).engine;
        const ids: number[] = [];
        let text = '';
        try {
          const run = engine.generate(prompt, { maxTokens, temperature: 0, stopTokenIds: [], cache: false });
          for await (const d of run) {
            ids.push(...d.tokenIds);
            text += d.text;
          }
          return { value: { ids, text, stats: await run.result } };
        } catch (e) {
          const err = e as Error & { code?: string };
          return { error: { name: err.name, code: err.code, message: err.message } };
        }
      }, { prompt: promptIds, maxTokens });

    if (options.warmup ?? true) {
      status('warm-up');
      await generate(Math.min(4, genTokens));
    }
    status(`generating ${genTokens} tokens`);
    const run = await generate(genTokens);
    await page.evaluate(() => (window as unknown as { engine: { unload(): Promise<void> } }).engine.unload());
    if (consoleErrors.length) status(`page errors: ${consoleErrors.join(' | ')}`);

    const s = run.stats;
    const decodeSteps = Math.max(1, s.generatedTokens - 1);
    return {
      model: manifest.name,
      adapter: adapterKind,
      adapterInfo: adapter,
      promptTokens: s.promptTokens,
      generatedTokens: s.generatedTokens,
      ids: run.ids,
      text: run.text,
      prefillTokensPerSecond: s.prefillTokensPerSecond,
      decodeTokensPerSecond: s.decodeTokensPerSecond,
      decodeMsPerToken: s.decodeTokensPerSecond ? 1000 / s.decodeTokensPerSecond : 0,
      dispatchesPerToken: s.dispatchesPerToken,
      encodeMsPerToken: s.encodeMs / decodeSteps,
      packageMB: packageBytes / MB,
      installMs,
      installMBps: packageBytes / MB / (installMs / 1000),
      loadMs: load.stats.loadMs,
      loadWallMs: load.wallMs,
      shardMB: shardBytes / MB,
      peakHeldMB: load.peakHeldBytes / MB,
      peakJsHeapMB: peak.peakBytes / MB,
      peakJsHeapBaselineMB: baseline.totalBytes / MB,
      heapSamples: peak.samples,
    };
  } finally {
    await browser.close().catch(() => {});
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  }
}

export function describeAdapter(a: AdapterSummary): string {
  const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || '(adapter info hidden)';
  return `${name}; shader-f16 ${a.f16 ? 'yes' : 'no'}; maxStorageBufferBindingSize ${(a.maxStorageBufferBindingSize / MB).toFixed(0)} MiB`;
}
