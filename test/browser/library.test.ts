/**
 * The embeddable library: `npm run build`'s output (vite.lib.config.ts + tsconfig.lib.json) is ES modules with
 * declarations, keeps Node-only code off the browser's import path, and runs from a plain static server in
 * Chromium with no bundler; the examples page embeds it and streams a story.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { build } from 'vite';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint } from '../../src/formats/package-writer.ts';
import { llama2ChatPromptIds } from '../../src/generate/chat-template.ts';
import { perplexity } from '../../src/model/score.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { readManifest } from '../helpers/fixtures.ts';
import { haveSharedModel, sharedModel, STORIES260K_GREEDY_IDS, STORIES260K_GREEDY_TEXT } from '../helpers/models.ts';
import { referenceScores } from '../reference/score.ts';
import { haveChromium, launch, ROOT, useApp, watchErrors } from './harness.ts';
import { sendLibFile } from './lib-files.ts';

/** A page that uses the built library as a plain ES module and reports what happened in window.result. */
const PLAIN_PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>lib</title>
<script type="module">
  import { createIdbStore, createWorkerEngine, LlamaWebGpuError, ModelNotInstalledError } from '/lib/index.js';
  const installed = (await createIdbStore('library-test').list()).length;
  try {
    await createWorkerEngine({ model: 'not-installed', storeName: 'library-test' });
    window.result = { installed, error: null };
  } catch (e) {
    window.result = { installed, error: { isLib: e instanceof LlamaWebGpuError, isClass: e instanceof ModelNotInstalledError, name: e.name, code: e.code, modelId: e.modelId, message: e.message } };
  }
</script>`;

/**
 * The worker engine's whole API on stories260K, from the built library: install, generate (ids and text), the
 * tokenizer calls, score, both chat.completions forms, an AbortSignal, stats, unload. Reports in window.result.
 */
const STORY = 'Tom had a small red boat. He liked to sail it on the pond near his house. One day, the wind was very strong and the boat went far away.';

const WORKER_API_PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>worker api</title>
<script type="module">
  import { createIdbStore, installFromUrl, createWorkerEngine, WorkerEngineTerminatedError, InvalidOptionsError, ContextOverflowError, EngineUnloadedError } from '/lib/index.js';
  const r = {};
  try {
    const store = createIdbStore();
    await installFromUrl(store, '/pkg/stories260K/');
    const progress = [];
    const engine = await createWorkerEngine({ model: 'stories260K', onProgress: (p) => progress.push(p.phase) });
    r.phases = [...new Set(progress)];
    r.modelId = engine.modelId;

    // The main thread keeps running while the worker decodes: count timer ticks during generation.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const run = engine.generate([1], { temperature: 0, maxTokens: 40 });
    r.ids = []; r.text = '';
    for await (const d of run) { r.ids.push(...d.tokenIds); r.text += d.text; }
    clearInterval(timer);
    r.ticks = ticks;
    r.greedyStats = await run.result;

    // The tokenizer calls, and a score through the worker's queue between two greedy runs.
    const story = ${JSON.stringify(STORY)};
    r.tok = { ids: await engine.tokenize(story), noBos: await engine.tokenize(story, { addBos: false }) };
    r.tok.text = await engine.detokenize(r.tok.ids);
    r.tok.chat = await engine.tokenizeChat([{ role: 'user', content: 'Tell a story.' }]);
    try { await engine.detokenize([1, 100000]); r.tok.bad = 'no error'; } catch (e) { r.tok.bad = { isClass: e instanceof InvalidOptionsError, option: e.option }; }
    r.scoreProgress = [];
    r.score = await engine.score(story, { onProgress: (p) => r.scoreProgress.push(p) });
    const cancelled = new AbortController();
    cancelled.abort();
    try { await engine.score(story, { signal: cancelled.signal }); r.scoreAbort = 'no error'; } catch (e) { r.scoreAbort = e.name; }
    r.afterScore = [];
    for await (const d of engine.generate([1], { temperature: 0, maxTokens: 40 })) r.afterScore.push(...d.tokenIds);

    const completion = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Tell a story.' }], temperature: 0, max_tokens: 12 });
    r.completion = { object: completion.object, content: completion.choices[0].message.content, finish: completion.choices[0].finish_reason, usage: completion.usage };

    const chunks = [];
    for await (const c of await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Tell a story.' }], temperature: 0, max_tokens: 12, stream: true })) chunks.push(c);
    r.streamed = { n: chunks.length, first: chunks[0].choices[0].delta, content: chunks.map((c) => c.choices[0].delta.content ?? '').join(''), last: chunks.at(-1) };

    // A stream that is never iterated holds nothing back: the request after it runs, and it runs when iterated.
    const msgs = [{ role: 'user', content: 'Tell a story.' }];
    const [idleStream, whole] = await Promise.all([
      engine.chat.completions.create({ messages: msgs, temperature: 0, max_tokens: 12, stream: true }),
      engine.chat.completions.create({ messages: msgs, temperature: 0, max_tokens: 12 }),
    ]);
    let idleText = '';
    for await (const c of idleStream) idleText += c.choices[0].delta.content ?? '';
    r.idle = { whole: whole.choices[0].message.content, streamed: idleText };
    // Leaving the loop early cancels the request.
    const left = engine.generate([1], { temperature: 0, maxTokens: 100 });
    for await (const d of left) break;
    r.leftStats = await left.result;
    try { engine.generate([1], { maxTokens: -1 }); r.invalid = 'no error'; } catch (e) { r.invalid = { isClass: e instanceof InvalidOptionsError, code: e.code, message: e.message }; }
    // Checked in the worker against the vocabulary: the error keeps its class across the boundary.
    try { for await (const d of engine.generate([1], { stopTokenIds: [100000] })); r.invalidInWorker = 'no error'; } catch (e) { r.invalidInWorker = { isClass: e instanceof InvalidOptionsError, option: e.option, message: e.message }; }
    // A prompt longer than the context: ContextOverflowError in the worker, the same class with its fields here.
    const long = new Array(r.greedyStats.contextLength + 8).fill(1);
    try { for await (const d of engine.generate(long, { maxTokens: 4 })); r.overflow = 'no error'; } catch (e) { r.overflow = { isClass: e instanceof ContextOverflowError, name: e.name, code: e.code, promptTokens: e.promptTokens, contextLength: e.contextLength, message: e.message }; }
    // Structured output in the worker: a schema for generate(), response_format for chat, a refused keyword.
    const person = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['name', 'age'], additionalProperties: false };
    const jsonRun = engine.generate('Once upon a time', { temperature: 0.8, seed: 5, maxTokens: 60, jsonSchema: person });
    let jsonText = '';
    for await (const d of jsonRun) jsonText += d.text;
    const jsonChat = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'JSON please.' }], response_format: { type: 'json_object' }, max_tokens: 30, seed: 1 });
    r.json = { text: jsonText, finish: (await jsonRun.result).finishReason, chat: jsonChat.choices[0].message.content, chatFinish: jsonChat.choices[0].finish_reason };
    try { engine.generate([1], { jsonSchema: { type: 'string', pattern: 'a' } }); r.badSchema = 'no error'; } catch (e) { r.badSchema = { name: e.name, code: e.code, keyword: e.keyword }; }

    const controller = new AbortController();
    const aborted = engine.generate('Once upon a time', { temperature: 0.8, seed: 3, maxTokens: 100, signal: controller.signal });
    let n = 0;
    for await (const d of aborted) if (++n === 2) controller.abort();
    r.abortStats = await aborted.result;
    r.stats = engine.stats();

    // A chat's second turn reuses the first one's KV cache in the worker, and replies as a cold run does.
    r.chats = {};
    for (const cache of [true, false]) {
      const messages = [{ role: 'user', content: 'Tell me about a cat.' }];
      const first = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8, cache });
      messages.push(first.choices[0].message, { role: 'user', content: 'What did it eat?' });
      const second = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8, cache });
      r.chats[cache] = { replies: [first, second].map((c) => c.choices[0].message.content), first: first.usage, second: second.usage, stats: engine.stats() };
    }

    await engine.unload();
    try { engine.generate('x'); r.afterUnload = 'no error'; } catch (e) { r.afterUnload = { code: e.code, isClass: e instanceof EngineUnloadedError }; }

    // terminate() drops a running request: its stream fails with WorkerEngineTerminatedError.
    const second = await createWorkerEngine({ model: 'stories260K' });
    const dropped = second.generate('Once upon a time', { maxTokens: 100 });
    try {
      for await (const d of dropped) second.terminate();
      r.terminated = 'no error';
    } catch (e) {
      r.terminated = { code: e.code, isClass: e instanceof WorkerEngineTerminatedError };
    }
  } catch (e) {
    r.error = String(e && e.stack || e);
  }
  window.result = r;
</script>`;

/** Every module reachable from `entry` through static imports, following relative specifiers. */
function staticGraph(dir: string, entry: string): Map<string, string> {
  const seen = new Map<string, string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const code = readFileSync(path.join(dir, file), 'utf8');
    seen.set(file, code);
    for (const m of code.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith('.')) visit(path.normalize(path.join(path.dirname(file), spec)));
      else seen.set(`external:${spec}`, '');
    }
  };
  visit(entry);
  return seen;
}

describe.skipIf(!haveChromium())('library build', () => {
  let work: string;
  let packages: string;
  let lib: string;
  let types: string;
  let server: http.Server;
  let base: string;
  let browser: Browser;

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-lib-'));
    lib = path.join(work, 'lib');
    types = path.join(work, 'types');
    packages = path.join(work, 'packages');
    if (haveSharedModel('stories260K/stories260Ktok512.gguf')) {
      const ckpt = await openCheckpoint(sharedModel('stories260K/stories260Ktok512.gguf'));
      try {
        await convertCheckpoint(ckpt, await directorySink(path.join(packages, 'stories260K')), { quant: 'f32', name: 'stories260K' });
      } finally {
        await ckpt.close();
      }
    }
    await build({ configFile: path.join(ROOT, 'vite.lib.config.ts'), root: ROOT, logLevel: 'warn', build: { outDir: lib } });
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.lib.json', '--outDir', types], { cwd: ROOT, stdio: 'pipe' });
    // A plain static server: the page imports dist/lib/index.js with no bundler and no import map.
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/' || url.pathname === '/worker-api') {
        res.setHeader('Content-Type', 'text/html');
        res.end(url.pathname === '/' ? PLAIN_PAGE : WORKER_API_PAGE);
        return;
      }
      if (url.pathname.startsWith('/pkg/')) {
        const file = path.join(packages, path.normalize(url.pathname.slice('/pkg/'.length)));
        if (file.startsWith(packages) && existsSync(file) && statSync(file).isFile()) {
          createReadStream(file).pipe(res);
          return;
        }
      }
      sendLibFile(lib, url.pathname, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('emits ES module entries, separate worker files and declarations', () => {
    expect(existsSync(path.join(lib, 'index.js'))).toBe(true);
    expect(existsSync(path.join(lib, 'worker.js'))).toBe(true);
    const files = readdirSync(lib, { recursive: true }).map(String);
    expect(files.some((f) => /engine-worker.*\.js$/.test(f))).toBe(true);
    expect(files.some((f) => /store-worker.*\.js$/.test(f))).toBe(true);
    const dts = readFileSync(path.join(types, 'index.d.ts'), 'utf8');
    for (const name of ['createEngine', 'createWorkerEngine', 'createIdbStore', 'installFromUrl', 'LlamaWebGpuError']) expect(dts).toContain(name);
    expect(existsSync(path.join(types, 'worker/index.d.ts'))).toBe(true);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.exports['.']).toEqual({
      'types@<6.0': './types/index.d.ts',
      types: './dist/types/index.d.ts',
      node: './dist/node/index.js',
      import: './dist/lib/index.js',
    });
    expect(pkg.files).toEqual(expect.arrayContaining(['dist/lib', 'dist/types']));
  });

  test('keeps Node-only modules off the browser import path', () => {
    for (const entry of ['index.js', 'worker.js']) {
      const graph = staticGraph(lib, entry);
      const externals = [...graph.keys()].filter((k) => k.startsWith('external:'));
      expect(externals, `${entry} statically imports ${externals.join(', ')}`).toEqual([]);
      for (const [file, code] of graph) expect(code, file).not.toMatch(/from\s*['"](node:|webgpu)/);
    }
    // No file of the browser build names a Node-only module, so an app's bundler never has to resolve one.
    const all = readdirSync(lib, { recursive: true }).map(String).filter((f) => f.endsWith('.js'));
    for (const f of all) expect(readFileSync(path.join(lib, f), 'utf8'), f).not.toMatch(/(from\s*|import\(\s*(\/\*[^*]*\*\/\s*)?)['"](node:[\w/]+|webgpu)['"]/);
    // Each worker is one self-contained file, created in the form app bundlers follow.
    const workers = all.flatMap((f) =>
      [...readFileSync(path.join(lib, f), 'utf8').matchAll(/new Worker\(new URL\("([^"]+)", import\.meta\.url\), \{\s*type: "module"/g)].map((m) =>
        path.join(path.dirname(f), m[1]),
      ),
    );
    expect(workers.map((w) => path.basename(w).replace(/-[\w-]{8}\.js$/, ''))).toEqual(['engine-worker', 'store-worker']);
    for (const w of workers) expect(readFileSync(path.join(lib, w), 'utf8'), w).not.toMatch(/^\s*import\s|import\(/m);
  });

  test('runs from a static server in Chromium: typed errors cross the worker boundary', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(base + '/');
    await page.waitForFunction(() => 'result' in window);
    const result = (await page.evaluate('window.result')) as { installed: number; error: { isLib: boolean; code: string; message: string } | null };
    expect(result.installed).toBe(0);
    expect(result.error).toMatchObject({ isLib: true, isClass: true, name: 'ModelNotInstalledError', code: 'MODEL_NOT_INSTALLED', modelId: 'not-installed' });
    expect(result.error!.message).toContain('Install it first');
    expect(errors).toEqual([]);
    await page.close();
  });

  test.skipIf(!haveSharedModel('stories260K/stories260Ktok512.gguf'))(
    'createWorkerEngine: generate, tokenize, score, chat completions (whole and streamed), an unconsumed stream, early exit, abort, option errors, stats and unload',
    async () => {
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(base + '/worker-api');
      await page.waitForFunction(() => 'result' in window, undefined, { timeout: 120_000 });
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const r = (await page.evaluate('window.result')) as any;
      expect(r.error).toBeUndefined();
      expect(r.modelId).toBe('stories260K');
      expect(r.phases).toEqual(expect.arrayContaining(['tokenizer', 'weights', 'ready']));
      expect(r.ids.slice(0, STORIES260K_GREEDY_IDS.length)).toEqual(STORIES260K_GREEDY_IDS);
      expect(r.text.startsWith(STORIES260K_GREEDY_TEXT)).toBe(true);
      expect(r.greedyStats).toMatchObject({ promptTokens: 1, generatedTokens: 40, finishReason: 'length' });
      expect(r.ticks).toBeGreaterThan(0);

      // The worker's tokenizer gives the ids the Engine's does (BOS and the tokenizer's own), and the text back.
      const dir = path.join(packages, 'stories260K');
      const manifest = readManifest(dir);
      const tokenizer = await Tokenizer.fromModelProto(readFileSync(path.join(dir, manifest.tokenizer.file)));
      const ids = tokenizer.encode(STORY);
      expect(r.tok.ids).toEqual([manifest.config.bosId, ...ids]);
      expect(r.tok.noBos).toEqual(ids);
      expect(r.tok.text).toBe(STORY);
      expect(r.tok.chat).toEqual(llama2ChatPromptIds([{ role: 'user', content: 'Tell a story.' }], (t) => tokenizer.encode(t), manifest.config.bosId, manifest.config.eosId));
      tokenizer.dispose();
      expect(r.tok.bad).toEqual({ isClass: true, option: 'ids[1]' });
      // Its score: every token's -ln p within the f16 KV cache's tolerance of the float64 reference's.
      const want = referenceScores(dir, ids, r.greedyStats.contextLength);
      expect(r.score.tokenIds).toEqual(ids);
      expect(r.score.tokenNll).toHaveLength(ids.length);
      r.score.tokenNll.forEach((nll: number, i: number) => expect(Math.abs(nll - want.nll[i]), `token ${i}`).toBeLessThanOrEqual(2e-2));
      expect(Math.abs(r.score.perplexity / perplexity(want.nll) - 1)).toBeLessThanOrEqual(2e-2);
      expect(r.score.perplexity).toBeCloseTo(Math.exp(r.score.nll), 9);
      expect(r.scoreProgress.at(-1)).toEqual({ done: ids.length, total: ids.length });
      expect(r.scoreAbort).toBe('AbortError');
      expect(r.afterScore).toEqual(r.ids);

      expect(r.completion.object).toBe('chat.completion');
      expect(r.completion.content.length).toBeGreaterThan(0);
      expect(r.completion.usage.completion_tokens).toBeGreaterThan(0);
      expect(r.completion.usage.completion_tokens).toBeLessThanOrEqual(12);
      // Same request streamed: same text, first chunk the role, last chunk the finish reason and usage.
      expect(r.streamed.first).toEqual({ role: 'assistant' });
      expect(r.streamed.content).toBe(r.completion.content);
      expect(r.streamed.last.choices[0].finish_reason).toBe(r.completion.finish);
      expect(r.streamed.last.usage).toEqual(expect.objectContaining({ completion_tokens: r.completion.usage.completion_tokens }));

      expect(r.idle.streamed).toBe(r.idle.whole);
      expect(r.idle.whole).toBe(r.completion.content);
      expect(r.leftStats.finishReason).toBe('abort');
      expect(r.leftStats.generatedTokens).toBeGreaterThan(0);
      expect(r.leftStats.generatedTokens).toBeLessThan(100);
      expect(r.invalid).toMatchObject({ isClass: true, code: 'INVALID_OPTIONS' });
      expect(r.invalid.message).toMatch(/^maxTokens: must be an integer >= 0/);
      expect(r.json.finish).toBe('stop');
      const person = JSON.parse(r.json.text);
      expect(Object.keys(person)).toEqual(['name', 'age']);
      expect(typeof person.name === 'string' && Number.isInteger(person.age) && person.age >= 0 && person.age <= 99).toBe(true);
      expect(r.json.chatFinish).toBe('stop');
      expect(JSON.parse(r.json.chat)).toBeTypeOf('object');
      expect(r.badSchema).toEqual({ name: 'JsonSchemaError', code: 'JSON_SCHEMA', keyword: 'pattern' });
      expect(r.invalidInWorker).toEqual({ isClass: true, option: 'stopTokenIds[0]', message: 'stopTokenIds[0]: must be a token id, an integer in 0..511, got 100000.' });
      const contextLength = r.greedyStats.contextLength;
      expect(r.overflow).toMatchObject({ isClass: true, name: 'ContextOverflowError', code: 'CONTEXT_OVERFLOW', promptTokens: contextLength + 8, contextLength });
      expect(r.overflow.message).toBe(`The prompt is ${contextLength + 8} tokens but the context holds ${contextLength}. Shorten the prompt (or the conversation history), or load the model with a longer context.`);

      expect(r.abortStats.finishReason).toBe('abort');
      expect(r.abortStats.generatedTokens).toBeLessThan(100);
      expect(r.stats).toEqual(r.abortStats);
      expect(r.chats.true.replies).toEqual(r.chats.false.replies);
      expect(r.chats.true.second.prompt_tokens_details.cached_tokens).toBeGreaterThanOrEqual(r.chats.true.first.prompt_tokens);
      expect(r.chats.true.second.extra.prefilled_tokens).toBe(r.chats.true.second.prompt_tokens - r.chats.true.second.prompt_tokens_details.cached_tokens);
      expect(r.chats.false.second.prompt_tokens_details.cached_tokens).toBe(0);
      expect(r.chats.true.stats).toMatchObject({ cachedPromptTokens: r.chats.true.second.prompt_tokens_details.cached_tokens, droppedMessages: 0 });
      expect(r.chats.true.stats.contextTokens).toBe(r.chats.true.second.total_tokens);
      expect(r.chats.true.stats.contextLength).toBeGreaterThanOrEqual(r.chats.true.stats.contextTokens);
      expect(r.afterUnload).toEqual({ code: 'ENGINE_UNLOADED', isClass: true });
      expect(r.terminated).toEqual({ code: 'WORKER_TERMINATED', isClass: true });
      expect(errors).toEqual([]);
      await page.close();
    },
  );
});

describe.skipIf(!haveChromium() || !haveSharedModel('stories260K/stories260Ktok512.gguf'))('examples/embed.html', () => {
  const session = useApp();

  test('embeds the library in a dozen lines and streams a story', async () => {
    const lines = readFileSync(path.join(ROOT, 'examples/embed.ts'), 'utf8').trim().split('\n');
    expect(lines.length).toBeLessThanOrEqual(12);
    const page = await session.browser.newPage();
    const errors = watchErrors(page);
    await page.goto(new URL('examples/embed.html', session.app.url).href);
    await page.waitForSelector('#out[data-done]', { timeout: 120_000 });
    expect(await page.getAttribute('#out', 'data-done')).toBe('60');
    const text = (await page.textContent('#out')) ?? '';
    expect(text.length).toBeGreaterThan(40);
    expect(text).toMatch(/^[ ,]/); // the continuation of "Once upon a time"
    expect(errors).toEqual([]);
    await page.close();
  });
});
