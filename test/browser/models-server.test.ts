/**
 * The sample-model server (scripts/models-plugin.ts) under the dev server (`npm run dev`): it lists the sample
 * GGUFs that carry weights, converts one on its first request into the packages folder, serves package files with
 * byte ranges, and refuses anything outside that folder.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createServer, type ViteDevServer } from 'vite';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';
import { ROOT } from './harness.ts';

const GGUF = 'stories260K/stories260Ktok512.gguf';

describe.skipIf(!haveSharedModel(GGUF))('sample model server', () => {
  let work: string;
  let server: ViteDevServer;
  let base: string;
  const saved = { samples: process.env.LLAMA_WEBGPU_SAMPLE_MODELS, packages: process.env.LLAMA_WEBGPU_MODELS_DIR };

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-models-'));
    // A samples folder of our own: one weight-carrying GGUF, and the vocab-only GGUF that must not be offered.
    mkdirSync(path.join(work, 'samples/stories260K'), { recursive: true });
    mkdirSync(path.join(work, 'samples/vocab'), { recursive: true });
    copyFileSync(sharedModel(GGUF), path.join(work, 'samples', GGUF));
    if (haveSharedModel('llama2-tokenizer/ggml-vocab-llama-spm.gguf')) {
      copyFileSync(sharedModel('llama2-tokenizer/ggml-vocab-llama-spm.gguf'), path.join(work, 'samples/vocab/ggml-vocab-llama-spm.gguf'));
    }
    process.env.LLAMA_WEBGPU_SAMPLE_MODELS = path.join(work, 'samples');
    process.env.LLAMA_WEBGPU_MODELS_DIR = path.join(work, 'packages');
    server = await createServer({ root: ROOT, logLevel: 'warn', server: { host: '127.0.0.1', port: 0, hmr: false, ws: false } });
    await server.listen();
    base = `http://127.0.0.1:${(server.httpServer!.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await server?.close();
    process.env.LLAMA_WEBGPU_SAMPLE_MODELS = saved.samples;
    process.env.LLAMA_WEBGPU_MODELS_DIR = saved.packages;
    if (saved.samples === undefined) delete process.env.LLAMA_WEBGPU_SAMPLE_MODELS;
    if (saved.packages === undefined) delete process.env.LLAMA_WEBGPU_MODELS_DIR;
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('serves the chat page', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>llama-webgpu chat</title>');
  });

  test('lists the weight-carrying GGUFs of the samples folder, and the synthetic chat model', async () => {
    const res = await fetch(`${base}/models/index.json`);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({
      models: [
        { id: 'stories260K', name: 'stories260K', source: path.join('stories260K', 'stories260Ktok512.gguf') },
        { id: 'tiny-chat', name: 'tiny-chat', source: 'synthetic tiny shape, random weights, Llama 2 chat template' },
      ],
    });
  });

  test('writes the synthetic chat model on its first request: random weights with the Llama 2 chat template', async () => {
    const manifest = await (await fetch(`${base}/models/tiny-chat/manifest.json`)).json();
    expect(manifest.name).toBe('tiny-chat');
    expect(manifest.config).toMatchObject({ dim: 64, nLayers: 5, vocabSize: 512, chatTemplate: 'llama-2' });
    const shard = await fetch(`${base}/models/tiny-chat/${manifest.shards[0].file}`);
    expect((await shard.arrayBuffer()).byteLength).toBe(manifest.shards[0].byteSize);
  });

  test('converts a sample on first request and serves its package, with byte ranges', async () => {
    expect(existsSync(path.join(work, 'packages/stories260K'))).toBe(false);
    const [a, b] = await Promise.all([fetch(`${base}/models/stories260K/manifest.json`), fetch(`${base}/models/stories260K/manifest.json`)]);
    const manifest = await a.json();
    expect(await b.json()).toEqual(manifest);
    expect(manifest.format).toBe('llama-webgpu-package');
    expect(manifest.config).toMatchObject({ dim: 64, nLayers: 5, vocabSize: 512 });
    expect(manifest.tensors.every((t: { dtype: string }) => t.dtype === 'f32')).toBe(true);
    expect(existsSync(path.join(work, 'packages/stories260K/manifest.json'))).toBe(true);

    const shard = manifest.shards[0];
    const whole = new Uint8Array(await (await fetch(`${base}/models/stories260K/${shard.file}`)).arrayBuffer());
    expect(whole.byteLength).toBe(shard.byteSize);
    expect(createHash('sha256').update(whole).digest('hex')).toBe(shard.sha256);
    const part = await fetch(`${base}/models/stories260K/${shard.file}`, { headers: { Range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${shard.byteSize}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(whole.subarray(100, 200));
    const tok = await fetch(`${base}/models/stories260K/${manifest.tokenizer.file}`);
    expect((await tok.arrayBuffer()).byteLength).toBe(manifest.tokenizer.byteSize);
  });

  test('answers 404 with a hint for unknown models and files, and never leaves the packages folder', async () => {
    const unknown = await fetch(`${base}/models/nope/manifest.json`);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain('LLAMA_WEBGPU_SAMPLE_MODELS');
    expect((await fetch(`${base}/models/stories260K/nope.bin`)).status).toBe(404);
    for (const p of ['/models/..%2F..%2Fpackage.json', '/models/stories260K/..%2Fmanifest.json', '/models/.hidden/manifest.json']) {
      const res = await fetch(base + p);
      expect(res.status, p).toBe(404);
      expect(await res.text()).not.toContain('"name": "llama-webgpu"');
    }
    expect(readFileSync(path.join(work, 'samples', GGUF)).byteLength).toBeGreaterThan(0);
  });
});
