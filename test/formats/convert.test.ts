/**
 * Conversion of real checkpoints into packages: stories260K as llama2.c .bin and as GGUF must give identical f32
 * tensors; safetensors and Flax folders written from the same weights (q/k permuted as Hugging Face stores them)
 * must convert to the same tensors; quantized packages stay within the encodings' error bounds.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/formats/detect.ts';
import type { Manifest } from '../../src/formats/manifest.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint } from '../../src/formats/package-writer.ts';
import { tensorDtype, type QuantScheme } from '../../src/formats/quant-plan.ts';
import { memorySource } from '../../src/formats/source.ts';
import { validateManifest } from '../../src/formats/validate.ts';
import {
  loadStories, RANDOM_GGUF, storiesTokenizerModel, readManifest, readPackageTensor, STORIES_BIN, STORIES_GGUF, STORIES_TOK,
  writeFlaxFolder, writeHfFolder,
} from '../helpers/fixtures.ts';
import { haveSharedModel, STORIES260K_GREEDY_IDS } from '../helpers/models.ts';
import { argmax, ReferenceModel } from '../reference/forward.ts';

const have = haveSharedModel('stories260K/stories260K.bin') && haveSharedModel('stories260K/stories260Ktok512.gguf');
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'convert-test-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function convert(input: string, out: string, quant: QuantScheme, extra: { tokenizer?: string; shardBytes?: number } = {}): Promise<Manifest> {
  const ckpt = await openCheckpoint(input, { tokenizer: extra.tokenizer });
  try {
    return await convertCheckpoint(ckpt, await directorySink(out), { quant, shardBytes: extra.shardBytes });
  } finally {
    await ckpt.close();
  }
}

/** Greedy ids from BOS of the float64 reference model run on the package's decoded weights. */
function greedyIds(dir: string, n: number): number[] {
  const m = readManifest(dir);
  const weights = new Map(m.tensors.map((t) => [t.name, readPackageTensor(dir, m, t.name)]));
  const model = new ReferenceModel(m.config, weights, n + 1);
  const ids: number[] = [];
  let token = m.config.bosId;
  for (let pos = 0; pos < n; pos++) ids.push((token = argmax(model.forward(token, pos))));
  return ids;
}

function expectSameTensors(dirA: string, dirB: string, rename: (n: string) => string = (n) => n) {
  const a = readManifest(dirA);
  const b = readManifest(dirB);
  for (const t of a.tensors) {
    expect(readPackageTensor(dirB, b, rename(t.name)), t.name).toEqual(readPackageTensor(dirA, a, t.name));
  }
  return { a, b };
}

describe.runIf(have)('stories260K', () => {
  let binDir: string;
  beforeAll(async () => {
    binDir = path.join(tmp, 'bin-f32');
    await convert(STORIES_BIN, binDir, 'f32', { tokenizer: STORIES_TOK });
  });

  it('llama2.c .bin converts to exactly its weights, with a valid manifest and hashed shards', () => {
    const m = validateManifest(readManifest(binDir));
    const { config, weights } = loadStories();
    expect(m.config).toEqual(config);
    expect(m.sharedClassifier).toBe(true);
    expect(m.tensors).toHaveLength(weights.size);
    for (const [name, w] of weights) expect(readPackageTensor(binDir, m, name), name).toEqual(w);
    for (const s of m.shards) {
      const bytes = readFileSync(path.join(binDir, s.file));
      expect(bytes.byteLength).toBe(s.byteSize);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(s.sha256);
    }
    const tok = readFileSync(path.join(binDir, 'tokenizer.model'));
    expect(createHash('sha256').update(tok).digest('hex')).toBe(m.tokenizer.sha256);
  });

  it('a llama2.c checkpoint with a separate classifier (negative vocab_size), tokenized by a tokenizer.model', async () => {
    const bin = new Uint8Array(readFileSync(STORIES_BIN));
    const embBytes = 512 * 64 * 4;
    const withCls = new Uint8Array(bin.length + embBytes);
    withCls.set(bin);
    withCls.set(bin.subarray(28, 28 + embBytes), bin.length); // wcls = a copy of the embedding
    new DataView(withCls.buffer).setInt32(20, -512, true);
    const tokModel = storiesTokenizerModel();
    const ckpt = await openCheckpoint(memorySource(withCls, 'cls.bin'), { tokenizer: memorySource(tokModel, 'tokenizer.model') });
    expect(ckpt.tensors.get('wcls')!.shape).toEqual([512, 64]);
    const out = path.join(tmp, 'cls-f32');
    const m = await convertCheckpoint(ckpt, await directorySink(out), { quant: 'f32' });
    expect(m.sharedClassifier).toBe(false);
    expect(readPackageTensor(out, m, 'wcls')).toEqual(readPackageTensor(binDir, readManifest(binDir), 'tokenEmbedding'));
    expect(new Uint8Array(readFileSync(path.join(out, 'tokenizer.model')))).toEqual(tokModel);
  });

  it('the GGUF form converts to the same tensors; its separate output.weight equals the embedding', async () => {
    const ggufDir = path.join(tmp, 'gguf-f32');
    await convert(STORIES_GGUF, ggufDir, 'f32');
    const { a, b } = expectSameTensors(binDir, ggufDir);
    expect(b.sharedClassifier).toBe(false);
    expect(readPackageTensor(ggufDir, b, 'wcls')).toEqual(readPackageTensor(binDir, a, 'tokenEmbedding'));
    // The files differ only where the formats do: context length, GGUF's float32 epsilon and explicit rope dims.
    expect(b.config).toEqual({ ...a.config, maxSeqLen: 128, normEps: Math.fround(1e-5), ropeDims: 8 });
    expect(a.config.maxSeqLen).toBe(512);
    // Same vocab from tokenizer.bin and from GGUF metadata: the same tokenizer.model bytes.
    expect(b.tokenizer.sha256).toBe(a.tokenizer.sha256);
  });

  for (const shards of [1, 2] as const) {
    it(`a Hugging Face safetensors folder (${shards} shard${shards > 1 ? 's' : ''}, q/k permuted) converts to the same tensors`, async () => {
      const src = path.join(tmp, `hf-${shards}`);
      writeHfFolder(src, { shards });
      const out = path.join(tmp, `hf-${shards}-f32`);
      const m = await convert(src, out, 'f32');
      expect(m.source?.format).toBe('safetensors');
      expect(m.config).toEqual(readManifest(binDir).config);
      expectSameTensors(binDir, out);
    });

    it(`a Flax msgpack folder (${shards} shard${shards > 1 ? 's' : ''}, kernels transposed, q/k permuted) converts to the same tensors`, async () => {
      const src = path.join(tmp, `flax-${shards}`);
      writeFlaxFolder(src, { shards });
      const out = path.join(tmp, `flax-${shards}-f32`);
      const m = await convert(src, out, 'f32');
      expect(m.source?.format).toBe('flax');
      expectSameTensors(binDir, out);
    });
  }

  it('a Flax file with an untied lm_head under a "params" root, given as the .msgpack path, converts with wcls', async () => {
    const src = path.join(tmp, 'flax-untied');
    writeFlaxFolder(src, { untied: true, paramsRoot: true });
    const out = path.join(tmp, 'flax-untied-f32');
    const m = await convert(path.join(src, 'flax_model.msgpack'), out, 'f32');
    expect(m.sharedClassifier).toBe(false);
    expect(readPackageTensor(out, m, 'wcls')).toEqual(readPackageTensor(binDir, readManifest(binDir), 'tokenEmbedding'));
  });

  it('BF16 safetensors convert to the bf16-truncated weights', async () => {
    const src = path.join(tmp, 'hf-bf16');
    writeHfFolder(src, { dtype: 'BF16' });
    const out = path.join(tmp, 'hf-bf16-f32');
    const m = await convert(src, out, 'f32');
    const { weights } = loadStories();
    for (const name of ['layers.2.wq', 'layers.2.wk', 'layers.0.w2', 'tokenEmbedding']) {
      const w = weights.get(name)!;
      const u = new Uint32Array(w.slice().buffer);
      const truncated = new Float32Array(Uint32Array.from(u, (x) => x & 0xffff0000).buffer);
      expect(readPackageTensor(out, m, name), name).toEqual(truncated);
    }
  });

  // Per-group bounds: q8 rounds to half a step of max|w|/127; q4 clamps the side opposite the largest-magnitude
  // element at 7/8 of it, so its error stays within max|w|/8; f16 scales add a relative 2^-11.
  const bounds: Record<string, (amax: number) => number> = {
    q8: (amax) => (amax / 127) * 0.5 * 1.002 + amax * 2 ** -11,
    q4: (amax) => (amax / 8) * 1.002 + amax * 2 ** -11,
  };
  // q4 is the 4-bit mix (quant-plan.ts): each tensor must have the plan's dtype and stay within that dtype's bound.
  for (const quant of ['q8', 'q4', 'q4-pure'] as const) {
    it(`${quant} package round trip stays within the per-group bound, split into row chunks over several shards`, async () => {
      const out = path.join(tmp, `bin-${quant}`);
      const m = await convert(STORIES_BIN, out, quant, { tokenizer: STORIES_TOK, shardBytes: 16 * 1024 });
      validateManifest(m);
      expect(m.shards.length).toBeGreaterThan(3);
      const emb = m.tensors.find((t) => t.name === 'tokenEmbedding')!;
      expect(emb.chunks.length).toBeGreaterThan(1);
      expect(readdirSync(out).filter((f) => f.startsWith('shard-'))).toHaveLength(m.shards.length);
      const { weights } = loadStories();
      let worst = 0;
      for (const t of m.tensors) {
        const w = weights.get(t.name)!;
        const got = readPackageTensor(out, m, t.name);
        if (t.shape.length === 1) {
          expect(t.dtype).toBe('f32');
          expect(got).toEqual(w);
          continue;
        }
        expect(t.dtype, t.name).toBe(tensorDtype(quant, t.name, t.shape, { nLayers: m.config.nLayers, sharedClassifier: m.sharedClassifier }));
        const bound = bounds[t.dtype];
        const cols = t.shape[1];
        for (let r = 0; r < t.shape[0]; r++) {
          for (let g = 0; g < cols; g += 32) {
            let amax = 0;
            for (let c = g; c < Math.min(cols, g + 32); c++) amax = Math.max(amax, Math.abs(w[r * cols + c]));
            for (let c = g; c < Math.min(cols, g + 32); c++) {
              const err = Math.abs(got[r * cols + c] - w[r * cols + c]);
              worst = Math.max(worst, err / (amax || 1));
              if (err > bound(amax)) expect.fail(`${t.name}[${r}, ${c}]: error ${err} over bound ${bound(amax)}`);
            }
          }
        }
      }
      expect(worst).toBeGreaterThan(0);
    });
  }

  it('f16 packages hold every weight rounded to half precision', async () => {
    const out = path.join(tmp, 'bin-f16');
    const m = await convert(STORIES_BIN, out, 'f16', { tokenizer: STORIES_TOK, shardBytes: 20 * 1024 });
    const { weights } = loadStories();
    for (const t of m.tensors) {
      const w = weights.get(t.name)!;
      const got = readPackageTensor(out, m, t.name);
      const rel = t.shape.length === 1 ? 0 : 2 ** -11;
      for (let i = 0; i < w.length; i++) {
        if (Math.abs(got[i] - w[i]) > Math.abs(w[i]) * rel + 2 ** -24) expect.fail(`${t.name}[${i}]: ${got[i]} vs ${w[i]}`);
      }
    }
    expect(m.tensors.find((t) => t.name === 'layers.0.w2')!.dtype).toBe('f16');
  });

  // Depends on the packages written above (vitest runs a file's tests in order).
  it('packages from every format, and the q8, q4 and f16 packages, generate llama2.c\'s documented greedy ids', () => {
    const n = STORIES260K_GREEDY_IDS.length;
    for (const dir of ['bin-f32', 'gguf-f32', 'hf-2-f32', 'flax-2-f32', 'bin-q8', 'bin-q4', 'bin-f16']) {
      expect(greedyIds(path.join(tmp, dir), n), dir).toEqual(STORIES260K_GREEDY_IDS);
    }
  });
});

describe.runIf(haveSharedModel('random/llama-2-tiny-random.gguf'))('random F16 GGUF', () => {
  it('converts to f16 without changing a value, and to q4', async () => {
    const out = path.join(tmp, 'random-f16');
    const m = await convert(RANDOM_GGUF, out, 'f16');
    validateManifest(m);
    expect(m.config).toMatchObject({ dim: 8, nLayers: 1, vocabSize: 32000, ropeDims: 4, maxSeqLen: 4096 });
    const ckpt = await openCheckpoint(RANDOM_GGUF);
    try {
      for (const t of m.tensors) {
        const src = ckpt.tensors.get(t.name)!;
        expect(src.sourceDtype).toBe(t.shape.length === 1 ? 'F32' : 'F16');
        expect(readPackageTensor(out, m, t.name), t.name).toEqual(await src.readRows(0, t.shape.length === 1 ? 1 : t.shape[0]));
      }
    } finally {
      await ckpt.close();
    }
    const q4 = await convert(RANDOM_GGUF, path.join(tmp, 'random-q4'), 'q4');
    expect(q4.tensors.find((t) => t.name === 'tokenEmbedding')!.dtype).toBe('q4');
  });
});
