/**
 * Serves model packages to the chat page from the dev server (`npm run dev`) and the preview server (`npm start`):
 *
 *   GET /models/index.json        the sample models on offer: { models: [{ id, name, source }] }
 *   GET /models/<id>/<file>       a package file (manifest.json, tokenizer.model, shard-*.bin) from ./models/<id>/
 *
 * Sample models are the weight-carrying GGUF files in a local folder (LLAMA_WEBGPU_SAMPLE_MODELS, by default
 * ../shared/models when it exists), and "tiny-chat": random weights in synth's `tiny` shape with the Llama 2 chat
 * template (src/model/synthetic.ts), so the chat path works with no model files at all. The first request for one
 * converts it with the Node converter into ./models/<id>/ (git-ignored), so a fresh checkout gets a working chat with
 * no manual step.
 *
 * The converter (src/formats/) is loaded through Vite's module runner rather than imported here, so this plugin
 * stays a small config-time module and the converter resolves its imports exactly as in the CLI and the tests.
 */
import { createReadStream, existsSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Connect, Plugin } from 'vite';
import type { QuantScheme } from '../src/formats/quant-plan.ts';

export interface ModelsPluginOptions {
  /** Project root (where src/ lives). */
  root: string;
  /** Folder of sample checkpoints; default $LLAMA_WEBGPU_SAMPLE_MODELS or <root>/../shared/models. */
  samplesDir?: string;
  /** Where converted packages are kept and served from; default $LLAMA_WEBGPU_MODELS_DIR or <root>/models. */
  packagesDir?: string;
}

interface Sample {
  id: string;
  name: string;
  /** The checkpoint file, relative to the samples folder, or what the synthetic sample is. */
  source: string;
  /** The checkpoint file; null for the synthetic sample. */
  file: string | null;
  bytes: number;
}

/** The random-weight chat model every server offers; it needs no files. */
const SYNTHETIC_CHAT: Sample = { id: 'tiny-chat', name: 'tiny-chat', source: 'synthetic tiny shape, random weights, Llama 2 chat template', file: null, bytes: 0 };

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
/** Below this a sample is converted exactly (f32); above, to q8 so a large checkpoint stays browser-sized. */
const EXACT_LIMIT = 256 * 1024 * 1024;

/** Weight-carrying GGUF files (a vocab-only GGUF has no tensors and is skipped). */
async function ggufTensorCount(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(16);
    const { bytesRead } = await fh.read(b, 0, 16, 0);
    if (bytesRead < 16 || b.readUInt32LE(0) !== GGUF_MAGIC) return 0;
    return Number(b.readBigUInt64LE(8));
  } finally {
    await fh.close();
  }
}

async function findSamples(dir: string): Promise<Sample[]> {
  if (!existsSync(dir)) return [SYNTHETIC_CHAT];
  const out: Sample[] = [];
  const visit = async (rel: string, depth: number) => {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, entry.name);
      if (entry.isDirectory() && depth < 2) await visit(r, depth + 1);
      else if (entry.isFile() && entry.name.toLowerCase().endsWith('.gguf')) {
        const file = path.join(dir, r);
        if ((await ggufTensorCount(file)) === 0) continue;
        const stem = entry.name.slice(0, -'.gguf'.length);
        const folder = path.basename(path.dirname(file));
        // "stories260K/stories260Ktok512.gguf" is offered as "stories260K"; other files by their own name.
        const id = (stem.startsWith(folder) ? folder : stem).replace(/[^A-Za-z0-9._-]+/g, '-');
        out.push({ id, name: id, source: r, file, bytes: (await stat(file)).size });
      }
    }
  };
  await visit('', 0);
  const seen = new Set<string>([SYNTHETIC_CHAT.id]);
  return [...out.filter((s) => !seen.has(s.id) && seen.add(s.id)), SYNTHETIC_CHAT].sort((a, b) => a.id.localeCompare(b.id));
}

type ConverterModules = {
  gguf: typeof import('../src/formats/gguf-checkpoint.ts');
  source: typeof import('../src/formats/node-source.ts');
  writer: typeof import('../src/formats/package-writer.ts');
  sink: typeof import('../src/formats/node-sink.ts');
  synthetic: typeof import('../src/model/synthetic.ts');
};

export function modelsPlugin(options: ModelsPluginOptions): Plugin {
  const root = options.root;
  const samplesDir = path.resolve(options.samplesDir ?? process.env.LLAMA_WEBGPU_SAMPLE_MODELS ?? path.join(root, '../shared/models'));
  const packagesDir = path.resolve(options.packagesDir ?? process.env.LLAMA_WEBGPU_MODELS_DIR ?? path.join(root, 'models'));
  const converting = new Map<string, Promise<void>>();
  let modules: Promise<{ mods: ConverterModules; close(): Promise<void> }> | null = null;

  const loadConverter = () =>
    (modules ??= (async () => {
      const { startModuleRunner } = await import('./module-runner.mjs');
      const runner = await startModuleRunner(root);
      const load = <T>(p: string) => runner.import(path.join(root, p)) as Promise<T>;
      const mods: ConverterModules = {
        gguf: await load('src/formats/gguf-checkpoint.ts'),
        source: await load('src/formats/node-source.ts'),
        writer: await load('src/formats/package-writer.ts'),
        sink: await load('src/formats/node-sink.ts'),
        synthetic: await load('src/model/synthetic.ts'),
      };
      return { mods, close: runner.close };
    })());

  async function convert(sample: Sample): Promise<void> {
    const { mods } = await loadConverter();
    const quant: QuantScheme = (process.env.LLAMA_WEBGPU_SAMPLE_QUANT as QuantScheme | undefined) ?? (sample.bytes <= EXACT_LIMIT ? 'f32' : 'q8');
    const t0 = Date.now();
    console.log(`[models] converting ${sample.source} to ${path.join(packagesDir, sample.id)} (${quant}) on first use…`);
    const ckpt = sample.file ? await mods.gguf.openGguf(await mods.source.fileSource(sample.file)) : mods.synthetic.synthCheckpoint('tiny');
    try {
      const sink = await mods.sink.directorySink(path.join(packagesDir, sample.id));
      await mods.writer.convertCheckpoint(ckpt, sink, { quant, name: sample.name });
    } finally {
      await ckpt.close();
    }
    console.log(`[models] ${sample.id} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  /** Converts a sample on its first request; concurrent requests wait for the same conversion. */
  async function ensurePackage(id: string): Promise<boolean> {
    if (existsSync(path.join(packagesDir, id, 'manifest.json'))) return true;
    const sample = (await findSamples(samplesDir)).find((s) => s.id === id);
    if (!sample) return false;
    let job = converting.get(id);
    if (!job) {
      job = convert(sample).finally(() => converting.delete(id));
      converting.set(id, job);
    }
    await job;
    return true;
  }

  const types: Record<string, string> = { '.json': 'application/json', '.bin': 'application/octet-stream', '.model': 'application/octet-stream' };

  async function serveFile(req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
    const size = (await stat(file)).size;
    res.setHeader('Content-Type', types[path.extname(file)] ?? 'application/octet-stream');
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Cache-Control', 'no-cache');
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = size - 1;
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start > end || start >= size) {
        res.statusCode = 416;
        res.setHeader('Content-Range', `bytes */${size}`);
        res.end();
        return;
      }
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    }
    res.setHeader('Content-Length', String(end - start + 1));
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file, { start, end }).pipe(res);
  }

  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!url.pathname.startsWith('/models/') || (req.method !== 'GET' && req.method !== 'HEAD')) return next();
    const fail = (status: number, message: string) => {
      res.statusCode = status;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end(message);
    };
    (async () => {
      if (url.pathname === '/models/index.json') {
        const samples = await findSamples(samplesDir);
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('Cache-Control', 'no-store');
        res.end(JSON.stringify({ models: samples.map(({ id, name, source }) => ({ id, name, source })) }));
        return;
      }
      const m = /^\/models\/([A-Za-z0-9._-]+)\/([A-Za-z0-9._-]+)$/.exec(url.pathname);
      if (!m || m[1].startsWith('.') || m[2].startsWith('.')) return fail(404, `No model file at ${url.pathname}.`);
      const [, id, name] = m;
      if (!(await ensurePackage(id))) return fail(404, `No model "${id}" here. Put its GGUF file under ${samplesDir} (or set LLAMA_WEBGPU_SAMPLE_MODELS).`);
      const file = path.join(packagesDir, id, name);
      if (!existsSync(file)) return fail(404, `Model "${id}" has no file ${name}.`);
      await serveFile(req, res, file);
    })().catch((e: unknown) => {
      console.error('[models]', e);
      if (!res.headersSent) fail(500, `Serving ${url.pathname} failed: ${e instanceof Error ? e.message : String(e)}`);
      else res.destroy();
    });
  };

  return {
    name: 'llama-webgpu:models',
    configureServer(server) {
      server.middlewares.use(middleware);
      server.httpServer?.once('close', () => void modules?.then((m) => m.close()));
    },
    configurePreviewServer(server) {
      server.middlewares.use(middleware);
      server.httpServer?.once('close', () => void modules?.then((m) => m.close()));
    },
  };
}
