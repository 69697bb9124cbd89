/**
 * Local file vs URL conversion speed, and the JS memory a URL import holds.
 *   node scripts/run.mjs scripts/bench-import.ts [--layers N] [--dim N] [--quant q4|q8] [--browser]
 *
 * Writes a random-weight F16 GGUF (Llama shape: dim, 2.75 * dim hidden, `layers` layers, 512-piece vocab) to a
 * temporary folder, then converts it in Node from the file (openCheckpoint + convertCheckpoint into a directory
 * store) and from a local
 * HTTP server that answers Range requests (importFromUrl into a directory store), and with --browser imports it in
 * headless Chromium into IndexedDB from the built library. Prints MB/s of GGUF bytes for each and the peak JS memory
 * above the baseline (Node: heapUsed + arrayBuffers sampled every 10 ms; Chromium: page and workers over the
 * DevTools protocol) against the shard size.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { build } from 'vite';
import { HeapMonitor } from '../src/cli/browser/heap.ts';
import { launchChromium } from '../src/cli/browser/chromium.ts';
import { openCheckpoint } from '../src/formats/detect.ts';
import { DEFAULT_SHARD_BYTES } from '../src/formats/manifest.ts';
import { convertCheckpoint } from '../src/formats/package-writer.ts';
import { createFsStore } from '../src/storage/fs-store.ts';
import { importFromUrl } from '../src/storage/import.ts';
import { ggufBytes, llamaGgufMetadata, type GgufTensorSpec } from '../test/helpers/fixtures.ts';

/** scripts/serve-range.ts in a process of its own, so serving does not slow the conversion being measured. */
async function startServer(folder: string): Promise<{ url: string; close(): Promise<void> }> {
  const child = spawn(process.execPath, ['scripts/run.mjs', 'scripts/serve-range.ts', folder], {
    env: { ...process.env, LLAMA_WEBGPU_DAWN_NOTICES: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child.once('exit', (code) => reject(new Error(`serve-range exited with ${code}`)));
  });
  return { url, close: async () => void child.kill() };
}

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const dim = Number(arg('dim', '1024'));
const layers = Number(arg('layers', '8'));
const quant = arg('quant', 'q4') as 'q4' | 'q8';
const hidden = Math.round((dim * 2.75) / 256) * 256;
const vocab = 512;

function syntheticGguf(): Uint8Array {
  const f16 = (n: number) => {
    const u = new Uint16Array(n);
    for (let i = 0; i < n; i++) u[i] = 0x2000 + ((i * 2654435761) >>> 22); // small positive halves, no NaN or inf
    return new Uint8Array(u.buffer);
  };
  const f32 = (n: number) => new Uint8Array(new Float32Array(n).fill(1).buffer);
  const t = (name: string, shape: number[], type: 0 | 1): GgufTensorSpec => ({ name, shape, ggmlType: type, data: type ? f16(shape[0] * (shape[1] ?? 1)) : f32(shape[0]) });
  const tensors = [t('token_embd.weight', [dim, vocab], 1)];
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      t(p + 'attn_norm.weight', [dim], 0), t(p + 'attn_q.weight', [dim, dim], 1), t(p + 'attn_k.weight', [dim, dim], 1),
      t(p + 'attn_v.weight', [dim, dim], 1), t(p + 'attn_output.weight', [dim, dim], 1), t(p + 'ffn_norm.weight', [dim], 0),
      t(p + 'ffn_gate.weight', [dim, hidden], 1), t(p + 'ffn_down.weight', [hidden, dim], 1), t(p + 'ffn_up.weight', [dim, hidden], 1),
    );
  }
  tensors.push(t('output_norm.weight', [dim], 0));
  const config = { dim, hiddenDim: hidden, nLayers: layers, nHeads: dim / 64, nKvHeads: dim / 64, vocabSize: vocab, maxSeqLen: 2048, normEps: 1e-5, ropeTheta: 10000, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none' as const };
  return ggufBytes(llamaGgufMetadata(config), tensors);
}

/** Peak of heapUsed + arrayBuffers above the value when it starts, sampled every 10 ms. */
function nodeHeap(): () => number {
  const held = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const base = held();
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, held())), 10);
  return () => {
    clearInterval(timer);
    return Math.max(peak, held()) - base;
  };
}

const MB = (n: number) => (n / 1e6).toFixed(1);
const work = mkdtempSync(path.join(os.tmpdir(), 'bench-import-'));
try {
  const gguf = syntheticGguf();
  writeFileSync(path.join(work, 'model.gguf'), gguf);
  const bytes = gguf.byteLength;
  console.log(`synthetic F16 GGUF: dim ${dim}, hidden ${hidden}, ${layers} layers, vocab ${vocab}: ${MB(bytes)} MB -> ${quant}, ${MB(DEFAULT_SHARD_BYTES)} MB shards; load ${os.loadavg()[0].toFixed(1)}`);
  const server = await startServer(work);
  try {
    globalThis.gc?.();
    let stop = nodeHeap();
    let t0 = performance.now();
    const ckpt = await openCheckpoint(path.join(work, 'model.gguf'));
    // Into the same kind of store as the import, whose commit hashes every staged file again.
    await convertCheckpoint(ckpt, createFsStore(path.join(work, 'local')).sink('local'), { quant });
    await ckpt.close();
    let s = (performance.now() - t0) / 1000;
    console.log(`Node, local file:   ${(bytes / 1e6 / s).toFixed(1)} MB/s (${s.toFixed(1)} s), peak JS memory +${MB(stop())} MB`);

    globalThis.gc?.();
    stop = nodeHeap();
    t0 = performance.now();
    await importFromUrl(createFsStore(path.join(work, 'store')), `${server.url}/files/model.gguf`, { quant, id: 'url' });
    s = (performance.now() - t0) / 1000;
    console.log(`Node, importFromUrl: ${(bytes / 1e6 / s).toFixed(1)} MB/s (${s.toFixed(1)} s), peak JS memory +${MB(stop())} MB`);

    if (process.argv.includes('--browser')) {
      const lib = path.join(work, 'lib');
      await build({ configFile: path.resolve('vite.lib.config.ts'), logLevel: 'warn', build: { outDir: lib } });
      const page = `<!doctype html><meta charset="utf-8"><script type="module">
        import { createIdbStore, importFromUrl } from '/lib/index.js';
        window.go = async () => { const t0 = performance.now(); await importFromUrl(createIdbStore(), '/files/model.gguf', { quant: '${quant}', id: 'url' }); return (performance.now() - t0) / 1000; };
        window.ready = true;
      </script>`;
      const site = http.createServer((req, res) => {
        const u = new URL(req.url ?? '/', 'http://x');
        if (u.pathname === '/') return res.end(page);
        if (u.pathname.startsWith('/files/')) {
          const up = http.request(`${server.url}${u.pathname}`, { method: req.method, headers: req.headers }, (r) => (res.writeHead(r.statusCode ?? 502, r.headers), r.pipe(res)));
          return void req.pipe(up);
        }
        res.setHeader('Content-Type', 'text/javascript');
        import('node:fs').then((fs) => fs.createReadStream(path.join(lib, u.pathname.replace(/^\/lib\//, ''))).on('error', () => res.end()).pipe(res));
      });
      await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
      const browser = await launchChromium('swiftshader');
      try {
        const tab = await browser.newPage();
        await tab.goto(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`);
        await tab.waitForFunction(() => 'ready' in window);
        const heap = await HeapMonitor.attach(tab);
        await heap.collectGarbage();
        const base = (await heap.usage()).totalBytes;
        heap.start(10);
        const seconds = (await tab.evaluate('window.go()')) as number;
        const peak = await heap.stop();
        console.log(`Chromium, importFromUrl into IndexedDB: ${(bytes / 1e6 / seconds).toFixed(1)} MB/s (${seconds.toFixed(1)} s), peak JS memory ${MB(peak.peakBytes)} MB (baseline ${MB(base)} MB, ${peak.samples} samples)`);
      } finally {
        await browser.close();
        site.close();
      }
    }
  } finally {
    await server.close();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
