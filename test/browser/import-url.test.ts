/**
 * importFromUrl in Chromium, from the built library on a plain static server that answers Range requests: the
 * sample GGUF imported on the page's thread into IndexedDB and generating llama2.c's greedy story in the worker
 * engine, and a two-shard Hugging Face folder imported through the store worker (StoreWorkerClient). Both must
 * hold exactly the shards the Node converter writes from the same files.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openCheckpoint } from '../../src/formats/detect.ts';
import type { Manifest } from '../../src/formats/manifest.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint } from '../../src/formats/package-writer.ts';
import { writeHfFolder } from '../helpers/fixtures.ts';
import { haveSharedModel, sharedModel, STORIES260K_GREEDY_IDS } from '../helpers/models.ts';
import { startRangeServer, type RangeServer } from '../helpers/range-server.ts';
import { haveChromium, launch, ROOT, watchErrors } from './harness.ts';
import { sendLibFile } from './lib-files.ts';

const GGUF = 'stories260K/stories260Ktok512.gguf';
const SHARD_BYTES = 256 << 10;

const PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>import</title>
<script type="module">
  import { createIdbStore, importFromUrl, createWorkerEngine, StoreWorkerClient } from '/lib/index.js';
  const r = { phases: [] };
  try {
    const store = createIdbStore();
    const files = new URL('/files/', location.href).href;
    const gguf = await importFromUrl(store, files + 'models/${GGUF}', { quant: 'q8', shardBytes: ${SHARD_BYTES}, onProgress: (p) => r.phases.push(p.phase) });
    r.gguf = { id: gguf.id, shards: gguf.manifest.shards };
    const engine = await createWorkerEngine({ model: gguf.id });
    r.ids = [];
    for await (const d of engine.generate([1], { temperature: 0, maxTokens: 20 })) r.ids.push(...d.tokenIds);
    await engine.unload();
    const fractions = [];
    r.hfId = await new StoreWorkerClient().importFromUrl(files + 'hf/hf-two/', { modelId: 'hf-two', quant: 'f32', onProgress: (p) => fractions.push(p.fraction) });
    r.hf = (await store.getManifest('hf-two')).shards;
    r.lastFraction = fractions.at(-1);
  } catch (e) {
    r.error = String(e && e.stack || e);
  }
  window.result = r;
</script>`;

describe.skipIf(!haveChromium() || !haveSharedModel(GGUF))('importFromUrl in Chromium', () => {
  let work: string;
  let files: RangeServer;
  let server: http.Server;
  let browser: Browser;
  const local = new Map<string, Manifest>();

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-import-'));
    const lib = path.join(work, 'lib');
    writeHfFolder(path.join(work, 'hf', 'hf-two'), { shards: 2 });
    for (const [key, input, quant] of [['gguf', sharedModel(GGUF), 'q8'], ['hf', path.join(work, 'hf', 'hf-two'), 'f32']] as const) {
      const ckpt = await openCheckpoint(input);
      try {
        // The store worker's import uses the default shard size.
        const shardBytes = key === 'gguf' ? SHARD_BYTES : undefined;
        local.set(key, await convertCheckpoint(ckpt, await directorySink(path.join(work, 'local', key)), { quant, shardBytes }));
      } finally {
        await ckpt.close();
      }
    }
    await build({ configFile: path.join(ROOT, 'vite.lib.config.ts'), root: ROOT, logLevel: 'warn', build: { outDir: lib } });
    files = await startRangeServer({ '/models/': sharedModel('.'), '/hf/': path.join(work, 'hf') });
    // The page and the library from one origin; /files/ is proxied to the Range server as it is.
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/') {
        res.setHeader('Content-Type', 'text/html');
        res.end(PAGE);
      } else if (url.pathname.startsWith('/files/')) {
        const upstream = http.request(`${files.url}${url.pathname.slice('/files'.length)}`, { method: req.method, headers: req.headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      } else {
        sendLibFile(lib, url.pathname, res);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    await files?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('a GGUF on the page and a Hugging Face folder in the store worker: the Node converter\'s shards, and the greedy story', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    files.rangeRequests = 0;
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => 'result' in window, undefined, { timeout: 120_000 });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const r = (await page.evaluate('window.result')) as any;
    expect(r.error).toBeUndefined();
    expect(r.gguf.id).toBe('stories260Ktok512');
    expect(r.gguf.shards).toEqual(local.get('gguf')!.shards);
    expect(r.phases[0]).toBe('open');
    expect(r.phases.at(-1)).toBe('done');
    expect(r.ids.slice(0, STORIES260K_GREEDY_IDS.length)).toEqual(STORIES260K_GREEDY_IDS);
    expect(r.hfId).toBe('hf-two');
    expect(r.hf).toEqual(local.get('hf')!.shards);
    expect(r.lastFraction).toBe(1);
    expect(files.rangeRequests).toBeGreaterThan(2);
    expect(errors).toEqual([]);
    await page.close();
  });
});
