/**
 * The tokenizer in Chromium: a Vite production build of a small page (test/tokenizer/browser/) that loads
 * tokenizer.model over HTTP and tokenizes on the main thread and in a module worker. The ids and decoded text
 * must equal Node's. This proves the bundle works without Node built-ins (sentencepiece-js's `fs`, `url` and
 * `module` imports become empty browser stubs) and that the worker path starts the wasm runtime.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'vite';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { haveChromium, launch } from '../browser/harness.ts';
import { HAND_PICKED, longStrings, randomStrings } from './corpus.ts';
import { LLAMA2_MODEL, bytesOf } from './load.ts';

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.model': 'application/octet-stream' };

describe.runIf(haveChromium())('tokenizer in the browser', () => {
  let work: string;
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-tokenizer-page-'));
    const outDir = path.join(work, 'dist');
    await build({ root: path.join(__dirname, 'browser'), configFile: false, logLevel: 'error', build: { outDir, emptyOutDir: true, chunkSizeWarningLimit: 4096 } });
    server = http.createServer((req, res) => {
      const rel = req.url === '/' ? 'index.html' : decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(1));
      const file = rel === 'tokenizer.model' ? LLAMA2_MODEL : path.join(outDir, rel);
      try {
        const body = readFileSync(file);
        res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
        res.end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('encodes and decodes exactly as in Node, on the main thread and in a worker', async () => {
    const texts = [...HAND_PICKED, ...randomStrings(5, 40), longStrings()[0]];
    const node = await Tokenizer.fromModelProto(bytesOf(LLAMA2_MODEL), 'tokenizer.model');
    const expected = texts.map((t) => {
      const ids = node.encode(t);
      return { ids, text: node.decode(ids) };
    });
    expect(expected[texts.indexOf('Hello world')].ids).toEqual([15043, 3186]);

    const browser = await launch({ webgpu: false });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);
      await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
      const inPage = await page.evaluate(([u, t]) => window.tokenizeInPage(u, t), ['/tokenizer.model', texts] as const);
      const inWorker = await page.evaluate(([u, t]) => window.tokenizeInWorker(u, t), ['/tokenizer.model', texts] as const);
      expect(inPage).toEqual(expected);
      expect(inWorker).toEqual(expected);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
