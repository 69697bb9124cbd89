/**
 * The published package in a real app: `npm pack`, installed offline into a fresh Vite app (its dependencies
 * packed from this repository's node_modules), imported by name as the README's Library API shows. The app must
 * type-check with skipLibCheck false, build with `vite build` and generate in Chromium from the built files, and
 * generate under the Vite dev server too (where the worker must start once). The installed `llama-webgpu` command
 * runs its GPU-free commands and names the optional `webgpu` peer for the others; Node imports the package by name
 * and gets createFsStore.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { build, createServer, preview, type PreviewServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { haveSharedModel, sharedModel, STORIES260K_GREEDY_TEXT } from '../helpers/models.ts';
import { haveChromium, launch, ROOT, watchErrors } from './harness.ts';

const GGUF = 'stories260K/stories260Ktok512.gguf';

/** The app's code: the README's Library API example, reporting what happened on the page. */
const MAIN_TS = `import { createIdbStore, installFromUrl, createWorkerEngine, LlamaWebGpuError } from 'llama-webgpu';

const output = document.querySelector<HTMLPreElement>('#out')!;
try {
  const store = createIdbStore();
  await installFromUrl(store, new URL('models/stories260K/', location.href).href, { onProgress: (p) => console.log(p.phase) });
  const engine = await createWorkerEngine({ model: 'stories260K' });
  for await (const delta of engine.generate('', { maxTokens: 40, temperature: 0 })) {
    output.textContent += delta.text;
  }
  const stats = engine.stats();
  await engine.unload();
  document.body.dataset.result = JSON.stringify({ text: output.textContent, generated: stats.generatedTokens });
} catch (e) {
  const code = e instanceof LlamaWebGpuError ? e.code : '';
  document.body.dataset.result = JSON.stringify({ error: code + ' ' + String((e as Error).stack ?? e) });
}
`;

const INDEX_HTML = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>app</title>
<pre id="out"></pre><script type="module" src="/src/main.ts"></script>`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    types: [], strict: true, skipLibCheck: false, noEmit: true, isolatedModules: true,
  },
  include: ['src'],
};

/** A Node script that imports the package by name, as a Node user would, and converts nothing: it lists a store. */
const NODE_CHECK = `import { createEngine, createFsStore, installFromUrl, importFromUrl } from 'llama-webgpu';
import * as node from 'llama-webgpu/node';
const store = createFsStore(process.argv[2]);
const models = await store.list();
console.log(JSON.stringify({ ids: models.map((m) => m.id), same: node.createFsStore === createFsStore, fns: [typeof createEngine, typeof installFromUrl, typeof importFromUrl] }));
`;

/** Node, as a Node user writes it: the engine on Dawn over the directory store. */
const NODE_GENERATE = `import { createEngine, createFsStore } from 'llama-webgpu';
const engine = await createEngine({ store: createFsStore(process.argv[2]), model: 'stories260K' });
let text = '';
for await (const d of engine.generate('', { maxTokens: 40, temperature: 0 })) text += d.text;
await engine.unload();
console.log(JSON.stringify({ text }));
process.exit(0);
`;

/** The package's runtime dependencies and theirs, as folders of this repository's node_modules. */
function dependencyClosure(name: string, seen = new Set<string>()): Set<string> {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dep of Object.keys(pkg.dependencies ?? {})) {
    if (seen.has(dep)) continue;
    seen.add(dep);
    dependencyClosure(dep, seen);
  }
  return seen;
}

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
}

describe.skipIf(!haveChromium() || !haveSharedModel(GGUF))('the packed package in a fresh Vite app', () => {
  let work: string;
  let app: string;
  let browser: Browser;

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-vite-app-'));
    app = path.join(work, 'app');
    const tarballs = path.join(work, 'tarballs');
    mkdirSync(tarballs, { recursive: true });
    npm(['run', 'build'], ROOT);
    const packed = npm(['pack', '--ignore-scripts', '--pack-destination', tarballs], ROOT).trim().split('\n').pop()!;
    // Offline: the dependencies come from this repository's node_modules, packed like the registry would serve them.
    const dependencies: Record<string, string> = { 'llama-webgpu': `file:${path.join(tarballs, packed)}` };
    const own = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const closure = new Set(Object.keys(own.dependencies));
    for (const d of [...closure]) dependencyClosure(d, closure);
    for (const dep of closure) {
      const file = npm(['pack', '--ignore-scripts', '--pack-destination', tarballs, path.join(ROOT, 'node_modules', dep)], ROOT).trim().split('\n').pop()!;
      dependencies[dep] = `file:${path.join(tarballs, file)}`;
    }
    mkdirSync(path.join(app, 'src'), { recursive: true });
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies }, null, 2));
    writeFileSync(path.join(app, 'index.html'), INDEX_HTML);
    writeFileSync(path.join(app, 'src/main.ts'), MAIN_TS);
    writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    npm(['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], app);

    // The model package, converted by the installed command, served from the app's public/ folder.
    const cli = path.join(app, 'node_modules/.bin/llama-webgpu');
    execFileSync(cli, ['convert', sharedModel(GGUF), path.join(app, 'public/models/stories260K'), '--quant', 'f32'], { stdio: 'pipe' });
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function generateIn(url: string): Promise<{ result: { text?: string; generated?: number; error?: string }; errors: string[]; workers: number }> {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    let workers = 0;
    page.on('worker', () => workers++);
    await page.goto(url);
    await page.waitForSelector('body[data-result]', { timeout: 120_000 });
    const result = JSON.parse((await page.getAttribute('body', 'data-result'))!);
    await page.close();
    return { result, errors, workers };
  }

  test('the installed package declares webgpu an optional peer, its types dependency, and a Node entry', () => {
    const pkg = JSON.parse(readFileSync(path.join(app, 'node_modules/llama-webgpu/package.json'), 'utf8'));
    expect(pkg.peerDependencies).toEqual({ webgpu: expect.any(String) });
    expect(pkg.peerDependenciesMeta).toEqual({ webgpu: { optional: true } });
    expect(pkg.dependencies['@webgpu/types']).toEqual(expect.any(String));
    expect(pkg.devDependencies?.webgpu).toBeDefined(); // devDependencies are not installed with the package
    expect(readdirSync(path.join(app, 'node_modules'))).not.toContain('webgpu');
    expect(pkg.exports['.'].node).toBe('./dist/node/index.js');
  });

  test('the app type-checks against the published declarations with skipLibCheck false', () => {
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], { encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });

  test('Node imports the package by name: createFsStore lists the converted model, the same function from both entries', () => {
    writeFileSync(path.join(app, 'node-check.mjs'), NODE_CHECK);
    const out = execFileSync(process.execPath, ['node-check.mjs', path.join(app, 'public/models')], { cwd: app, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ ids: ['stories260K'], same: true, fns: ['function', 'function', 'function'] });
  });

  test('the installed command runs without webgpu and names it for the commands that need a GPU', () => {
    const cli = path.join(app, 'node_modules/.bin/llama-webgpu');
    const info = spawnSync(cli, ['info', path.join(app, 'public/models/stories260K')], { encoding: 'utf8' });
    expect(info.status).toBe(0);
    expect(info.stdout).toContain('vocab');
    const gen = spawnSync(cli, ['generate', path.join(app, 'public/models/stories260K'), '--prompt', '', '--max-tokens', '4'], { encoding: 'utf8' });
    expect(gen.status).toBe(1);
    expect(gen.stderr).toContain('npm install webgpu');
  });

  test('with webgpu installed beside it, Node generates through the package by name and through the command', () => {
    // As `npm install webgpu` would: the optional peer, from this repository's node_modules.
    symlinkSync(path.join(ROOT, 'node_modules/webgpu'), path.join(app, 'node_modules/webgpu'), 'dir');
    try {
      writeFileSync(path.join(app, 'node-generate.mjs'), NODE_GENERATE);
      const out = execFileSync(process.execPath, ['node-generate.mjs', path.join(app, 'public/models')], { cwd: app, encoding: 'utf8' });
      expect(JSON.parse(out.trim().split('\n').pop()!).text.startsWith(STORIES260K_GREEDY_TEXT)).toBe(true);
      const cli = spawnSync(path.join(app, 'node_modules/.bin/llama-webgpu'), ['generate', path.join(app, 'public/models/stories260K'), '--prompt', '', '--temperature', '0', '--max-tokens', '40'], { encoding: 'utf8' });
      expect(cli.status, cli.stderr).toBe(0);
      expect(cli.stdout.startsWith(STORIES260K_GREEDY_TEXT)).toBe(true);
    } finally {
      rmSync(path.join(app, 'node_modules/webgpu'));
    }
  });

  test('vite build: the built app generates in Chromium, each worker one file with nothing missing', async () => {
    const outDir = path.join(work, 'dist');
    await build({ root: app, configFile: false, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
    const server: PreviewServer = await preview({ root: app, configFile: false, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
    try {
      const { port } = server.httpServer.address() as AddressInfo;
      const { result, errors, workers } = await generateIn(`http://127.0.0.1:${port}/`);
      expect(result.error).toBeUndefined();
      expect(result.text!.startsWith(STORIES260K_GREEDY_TEXT)).toBe(true);
      expect(result.generated).toBe(40);
      expect(workers).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      await server.close();
    }
  });

  test('vite dev server: the app generates, the engine worker started once', async () => {
    const server: ViteDevServer = await createServer({ root: app, configFile: false, logLevel: 'warn', server: { host: '127.0.0.1', port: 0 } });
    await server.listen();
    try {
      const { port } = server.httpServer!.address() as AddressInfo;
      const { result, errors, workers } = await generateIn(`http://127.0.0.1:${port}/`);
      expect(result.error).toBeUndefined();
      expect(result.text!.startsWith(STORIES260K_GREEDY_TEXT)).toBe(true);
      expect(workers).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
