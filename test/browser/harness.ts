/**
 * Browser test harness: builds the chat page with the real vite.config.ts, serves it with `vite preview` (which
 * also serves the sample models through scripts/models-plugin.ts) on 127.0.0.1, and drives the system Chromium
 * through playwright-core with WebGPU on (SwiftShader in headless Chromium, or Mesa lavapipe through the build of
 * scripts/setup-chromium-lavapipe.sh; see src/cli/browser/chromium.ts).
 *
 * Chromium is never downloaded: /usr/bin/chromium and its lavapipe build come from scripts/setup-system.sh. In CI
 * (CI=true) a missing Chromium fails the run; elsewhere its tests are skipped with a loud warning.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, expect } from 'vitest';
import { chromiumProblem, launchChromium, type BrowserAdapter } from '../../src/cli/browser/chromium.ts';
import { buildLibrary, serveLibrary, type StaticServer } from '../../src/cli/browser/serve.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint, type ConvertOptions } from '../../src/formats/package-writer.ts';
import { synthCheckpoint } from '../../src/model/synthetic.ts';

export { CHROMIUM, CHROMIUM_ARGS } from '../../src/cli/browser/chromium.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');
export const SAMPLE_MODELS = path.resolve(ROOT, '../shared/models');

/**
 * True when Chromium on `adapter` is installed; in CI its absence throws, elsewhere it warns loudly and the tests
 * skip.
 */
export function haveChromium(adapter: BrowserAdapter = 'swiftshader'): boolean {
  const problem = chromiumProblem(adapter);
  if (!problem) return true;
  if (process.env.CI) throw new Error(`${problem}; in CI the browser tests must run.`);
  console.warn(`\n!!!!!!!! SKIPPING BROWSER TESTS ON ${adapter}: ${problem} !!!!!!!!\n`);
  return false;
}

export function launch(options: { webgpu?: boolean; adapter?: BrowserAdapter } = {}): Promise<Browser> {
  return launchChromium(options.adapter ?? 'swiftshader', options);
}

export interface AppServer {
  url: string;
  /** Where the server keeps converted sample packages (a fresh temporary folder per server). */
  packagesDir: string;
  close(): Promise<void>;
}

/**
 * Builds the app into a temporary folder and serves it with the preview server, whose models plugin converts
 * the sample models into a fresh temporary packages folder on first request.
 */
export async function startApp(): Promise<AppServer> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-app-'));
  const outDir = path.join(work, 'app');
  const packagesDir = path.join(work, 'models');
  process.env.LLAMA_WEBGPU_MODELS_DIR = packagesDir;
  process.env.LLAMA_WEBGPU_SAMPLE_MODELS ??= SAMPLE_MODELS;
  await build({ root: ROOT, mode: 'production', logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const server: PreviewServer = await preview({ root: ROOT, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0, strictPort: false } });
  const address = server.httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}/`,
    packagesDir,
    async close() {
      await server.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Collects page errors and console errors, so a test can assert the page ran cleanly. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}

/** Saves a screenshot under test-artifacts/ (git-ignored): the whole page, or with `fullPage` false the viewport. */
export async function screenshot(page: Page, name: string, fullPage = true): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** Opens the page and waits until it has checked WebGPU and listed the models. */
export async function openApp(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  return page;
}

/** The chat page and a Chromium, shared by the tests of one `describe`; set once its beforeAll has run. */
export interface AppSession {
  readonly app: AppServer;
  readonly browser: Browser;
}

/** Serves the chat page (startApp) and launches Chromium before the tests of the calling `describe`; closes both after them. */
export function useApp(): AppSession {
  const session = {} as { app: AppServer; browser: Browser };
  beforeAll(async () => {
    session.app = await startApp();
    session.browser = await launch();
  });
  afterAll(async () => {
    await session.browser?.close();
    await session.app?.close();
  });
  return session;
}

/** The built library served with model packages, and a Chromium, shared by the tests of one `describe`. */
export interface LibrarySession {
  readonly server: StaticServer;
  readonly browser: Browser;
  /** Loads the served page (the library on window.llama) in `page`; returns the errors it logs from now on. */
  open(page: Page): Promise<string[]>;
  /** A new page in its own context, opened as `open` does. */
  newPage(): Promise<{ page: Page; errors: string[] }>;
  /** Runs `fn` in a new page (the library on window.llama), expects the page to log no errors, closes it. */
  evaluate<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * Before the tests of the calling `describe`: converts the synthetic tiny checkpoint once per entry of `packages`
 * (served under /pkg/<key>/) into a temporary folder, builds the library, serves both with serveLibrary (whose
 * `onRequest` sees every request path) and launches Chromium. After them it closes both and removes the folder.
 */
export function useLibraryServer(packages: Record<string, ConvertOptions>, onRequest?: (pathname: string) => void): LibrarySession {
  let work: string | undefined;
  const session = {
    async open(page: Page): Promise<string[]> {
      const errors = watchErrors(page);
      await page.goto(session.server.url);
      await page.waitForFunction(() => (window as unknown as { llamaReady?: boolean }).llamaReady === true);
      return errors;
    },
    async newPage() {
      const page = await session.browser.newPage();
      return { page, errors: await session.open(page) };
    },
    async evaluate<T>(fn: () => Promise<T>): Promise<T> {
      const { page, errors } = await session.newPage();
      const result = (await page.evaluate(fn)) as T;
      expect(errors).toEqual([]);
      await page.close();
      return result;
    },
  } as LibrarySession & { server: StaticServer; browser: Browser };
  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-lib-'));
    const dirs: Record<string, string> = {};
    for (const [key, options] of Object.entries(packages)) {
      dirs[key] = path.join(work, 'pkg', key);
      await convertCheckpoint(synthCheckpoint('tiny'), await directorySink(dirs[key]), options);
    }
    await buildLibrary(path.join(work, 'lib'));
    session.server = await serveLibrary(path.join(work, 'lib'), dirs, onRequest);
    session.browser = await launch();
  });
  afterAll(async () => {
    await session.browser?.close();
    await session.server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });
  return session;
}
