/**
 * `llama-webgpu convert` and `info` in a temp dir: exit codes (0 success, 1 bad input, 2 usage), atomic output
 * (nothing at <out-dir> after a failure, an existing package kept), and what info reports.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { validateManifest } from '../../src/formats/validate.ts';
import { quantizeK } from '../../src/formats/kquant.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { ggufBytes, llamaGgufMetadata, readManifest, STORIES_BIN, STORIES_GGUF, STORIES_TOK, TINY_CONFIG, tinyGgufTensors, writeHfFolder } from '../helpers/fixtures.ts';
import { randomArray } from '../helpers/random.ts';
import { haveSharedModel } from '../helpers/models.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cli-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let out: string[];
beforeEach(() => {
  out = [];
  const capture = (...a: unknown[]) => void out.push(a.map(String).join(' '));
  vi.spyOn(console, 'log').mockImplementation(capture);
  vi.spyOn(console, 'error').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

describe.runIf(haveSharedModel('stories260K/stories260K.bin'))('convert and info', () => {
  it('converts a llama2.c checkpoint with --tokenizer, and info reports the package', async () => {
    const dir = path.join(tmp, 'q8');
    expect(await main(['convert', STORIES_BIN, dir, '--quant', 'q8', '--tokenizer', STORIES_TOK, '--shard-mb', '0.25'])).toBe(0);
    const m = validateManifest(readManifest(dir));
    expect(m.shards.length).toBeGreaterThan(1);
    expect(readdirSync(dir).sort()).toEqual(['manifest.json', ...m.shards.map((s) => s.file), 'tokenizer.model'].sort());
    out = [];
    expect(await main(['info', dir])).toBe(0);
    const text = out.join('\n');
    expect(text).toContain('hiddenDim    172');
    expect(text).toContain('tensors: 47 (classifier shared with the embedding)');
    const q8Bytes = m.tensors.filter((t) => t.dtype === 'q8').reduce((a, t) => a + t.chunks.reduce((b, c) => b + c.data.byteLength + c.scales!.byteLength, 0), 0);
    expect(text).toContain(`q8     ${q8Bytes.toLocaleString('en-US')} bytes`);
    out = [];
    expect(await main(['info', dir, '--verify'])).toBe(0);
    expect(out.join('\n')).toContain(`verified ${m.shards.length} shards and tokenizer.model`);
    // One flipped byte in a shard is caught.
    const shard = path.join(dir, m.shards[1].file);
    const bytes = readFileSync(shard);
    bytes[100] ^= 1;
    writeFileSync(shard, bytes);
    out = [];
    expect(await main(['info', dir, '--verify'])).toBe(1);
    expect(out.join('\n')).toMatch(/info failed: .*shard-00001\.bin: sha256 does not match/);
  });

  it('info on checkpoints: GGUF and a Hugging Face folder', async () => {
    expect(await main(['info', STORIES_GGUF])).toBe(0);
    expect(out.join('\n')).toMatch(/gguf checkpoint[\s\S]*maxSeqLen +128[\s\S]*tensors: 48\n {2}F32 +1,171,200 bytes/);
    const hf = path.join(tmp, 'hf');
    writeHfFolder(hf, { dtype: 'F16' });
    out = [];
    expect(await main(['info', hf])).toBe(0);
    expect(out.join('\n')).toMatch(/safetensors checkpoint[\s\S]*F16 +/);
    out = [];
    expect(await main(['info', STORIES_BIN])).toBe(0); // no tokenizer needed to inspect
    expect(out.join('\n')).toMatch(/llama2c checkpoint[\s\S]*tensors: 47 \(classifier shared/);
  });

  it('a failed conversion exits 1, writes nothing, and keeps an existing package', async () => {
    const dir = path.join(tmp, 'kept');
    expect(await main(['convert', STORIES_GGUF, dir, '--quant', 'q4'])).toBe(0);
    const manifest = readFileSync(path.join(dir, 'manifest.json'), 'utf8');
    const truncated = path.join(tmp, 'truncated.gguf');
    writeFileSync(truncated, readFileSync(STORIES_GGUF).subarray(0, 600_000));
    out = [];
    expect(await main(['convert', truncated, dir, '--quant', 'f32'])).toBe(1);
    expect(out.join('\n')).toMatch(/convert failed: truncated\.gguf \(.+\): .*truncated/);
    expect(readFileSync(path.join(dir, 'manifest.json'), 'utf8')).toBe(manifest);
    const fresh = path.join(tmp, 'never');
    expect(await main(['convert', truncated, fresh])).toBe(1);
    expect(await main(['convert', STORIES_BIN, fresh])).toBe(1); // no --tokenizer
    expect(out.join('\n')).toContain('--tokenizer');
    expect(existsSync(fresh)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('.partial-') || f.includes('.old-'))).toEqual([]);
  });

  it('usage errors exit 2', async () => {
    expect(await main(['convert', STORIES_GGUF])).toBe(2);
    expect(await main(['convert', STORIES_GGUF, path.join(tmp, 'x'), '--quant', 'q3'])).toBe(2);
    expect(await main(['convert', STORIES_GGUF, path.join(tmp, 'x'), '--bogus'])).toBe(2);
    expect(await main(['info'])).toBe(2);
    expect(await main(['info', path.join(tmp, 'does-not-exist')])).toBe(1);
    expect(existsSync(path.join(tmp, 'x'))).toBe(false);
  });
});

describe('convert on GGUF files with quantized tensors', () => {
  const config: ModelConfig = { ...TINY_CONFIG, dim: 256, hiddenDim: 256 };
  /** TINY_CONFIG widened to 256 with every matrix of ggml type `type` (blocks from `blocks(values)`). */
  const gguf = (file: string, type: number, blocks: (values: Float32Array) => Uint8Array) => {
    const tensors = tinyGgufTensors().map((t, i) => {
      const shape = t.shape.map((d) => (d === 5 ? 5 : 256));
      const values = randomArray(shape.reduce((a, b) => a * b, 1), 30 + i, 0.1);
      return shape.length === 1 ? { ...t, shape, data: new Uint8Array(values.buffer) } : { ...t, shape, ggmlType: type, data: blocks(values) };
    });
    writeFileSync(file, ggufBytes(llamaGgufMetadata(config), tensors));
    return file;
  };

  it('keeps Q4_K blocks as they are by default (--quant keep), and requantizes with --quant q8', async () => {
    const file = gguf(path.join(tmp, 'q4k.gguf'), 12, (v) => quantizeK(v, 'q4k'));
    const dir = path.join(tmp, 'q4k');
    expect(await main(['convert', file, dir])).toBe(0);
    expect(out.join('\n')).toContain('-> keep');
    const m = validateManifest(readManifest(dir));
    expect(m.source?.quant).toBe('keep');
    expect([...new Set(m.tensors.map((t) => t.dtype))].sort()).toEqual(['f32', 'q4k']);
    const q8 = path.join(tmp, 'q4k-q8');
    expect(await main(['convert', file, q8, '--quant', 'q8'])).toBe(0);
    expect([...new Set(validateManifest(readManifest(q8)).tensors.map((t) => t.dtype))].sort()).toEqual(['f32', 'q8']);
  });

  it('a type it can neither keep nor requantize (IQ2_XS, Q2_K) exits 1 naming the tensor and the type, and writes nothing', async () => {
    for (const [type, name, bytes] of [[17, 'IQ2_XS', 74], [10, 'Q2_K', 84]] as const) {
      const file = gguf(path.join(tmp, `${name}.gguf`), type, (v) => new Uint8Array((v.length / 256) * bytes));
      const dir = path.join(tmp, name);
      out = [];
      expect(await main(['convert', file, dir])).toBe(1);
      expect(out.join('\n')).toMatch(new RegExp(`token_embd\\.weight.*${name} is not supported.*Q4_K_M.*--quant keep`));
      expect(existsSync(dir)).toBe(false);
    }
  });
});
