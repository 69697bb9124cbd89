/**
 * Malformed inputs fail with a ModelFormatError that names the file and the field or tensor, and a failed
 * conversion leaves nothing behind (and never destroys an existing package).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConvertOptionsError, ModelFormatError } from '../../src/errors.ts';
import type { Checkpoint } from '../../src/formats/checkpoint.ts';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { readGguf } from '../../src/formats/gguf.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint } from '../../src/formats/package-writer.ts';
import { memorySource, type ByteSource } from '../../src/formats/source.ts';
import { validateManifest } from '../../src/formats/validate.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import {
  ggufBytes, hfConfigJson, llamaGgufMetadata, readManifest, safetensorsBytes, STORIES_BIN, STORIES_GGUF, STORIES_TOK,
  writeFlaxFolder, writeHfFolder,
} from '../helpers/fixtures.ts';
import { haveSharedModel } from '../helpers/models.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'bad-input-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const have = haveSharedModel('stories260K/stories260K.bin');

async function formatError(p: Promise<unknown>): Promise<ModelFormatError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ModelFormatError);
  return err as ModelFormatError;
}

function put(name: string, bytes: Uint8Array | string): string {
  const f = path.join(tmp, name);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, bytes);
  return f;
}

const tiny: ModelConfig = {
  dim: 32, hiddenDim: 64, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 5, maxSeqLen: 16, normEps: 1e-5,
  ropeTheta: 10000, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none',
};
function tinyTensors(over: Record<string, { type?: number; shape?: number[] }> = {}) {
  const spec: [string, number[]][] = [
    ['token_embd.weight', [32, 5]], ['blk.0.attn_norm.weight', [32]], ['blk.0.attn_q.weight', [32, 32]],
    ['blk.0.attn_k.weight', [32, 32]], ['blk.0.attn_v.weight', [32, 32]], ['blk.0.attn_output.weight', [32, 32]],
    ['blk.0.ffn_norm.weight', [32]], ['blk.0.ffn_gate.weight', [32, 64]], ['blk.0.ffn_down.weight', [64, 32]],
    ['blk.0.ffn_up.weight', [32, 64]], ['output_norm.weight', [32]],
  ];
  return spec.map(([name, shape]) => {
    const s = over[name]?.shape ?? shape;
    const type = over[name]?.type ?? 0;
    const n = s.reduce((a, b) => a * b, 1);
    return { name, shape: s, ggmlType: type, data: new Uint8Array(type === 0 ? n * 4 : type === 10 ? (n / 256) * 84 : n * 4) };
  });
}

describe('GGUF', () => {
  it('a good hand-built file opens, as GGUF v2 and v3 (the cases below differ from it in one thing)', async () => {
    for (const version of [2, 3]) {
      const ckpt = await openCheckpoint(put(`ok-v${version}.gguf`, ggufBytes(llamaGgufMetadata(tiny), tinyTensors(), version)));
      expect(ckpt.config).toMatchObject({ dim: 32, vocabSize: 5 });
      await ckpt.close();
    }
  });

  it('a GGUF without a vocab converts only with a tokenizer, and a failed attempt leaves nothing', async () => {
    const md = llamaGgufMetadata(tiny);
    for (const k of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) delete md[k];
    const ckpt = await openCheckpoint(put('novocab.gguf', ggufBytes(md, tinyTensors())));
    expect(ckpt.vocab).toBeNull();
    const out = path.join(tmp, 'novocab-out', 'pkg');
    const e = await formatError(convertCheckpoint(ckpt, await directorySink(out), { quant: 'f32' }));
    expect(e.field).toBe('tokenizer');
    expect(readdirSync(path.dirname(out))).toEqual([]);
    await ckpt.close();
  });

  it('wrong magic, bad version', async () => {
    const bytes = ggufBytes(llamaGgufMetadata(tiny), tinyTensors());
    bytes[0] = 0x47 ^ 0xff;
    const e = await formatError(openCheckpoint(put('magic.gguf', bytes)));
    expect(e.file).toBe('magic.gguf');
    expect(e.field).toBe('magic');
    const v1 = ggufBytes(llamaGgufMetadata(tiny), tinyTensors(), 1);
    expect((await formatError(openCheckpoint(put('v1.gguf', v1)))).field).toBe('version');
  });

  it.runIf(have)('truncated anywhere: in the header, the metadata, the tensor infos or the data', async () => {
    const full = new Uint8Array(readFileSync(STORIES_GGUF));
    for (const cut of [3, 20, 100, 5000, 14000, 14176 + 1000, full.length - 1]) {
      const e = await formatError(openCheckpoint(memorySource(full.subarray(0, cut), 'stories.gguf')));
      expect(e.message).toContain('stories.gguf');
      expect(e.message).toMatch(/truncated|past the end|ends before/);
    }
  });

  it('a tensor past the end of the file, an unaligned offset, an unknown or unsupported type', async () => {
    const bytes = ggufBytes(llamaGgufMetadata(tiny), tinyTensors());
    const past = await formatError(openCheckpoint(memorySource(bytes.subarray(0, bytes.length - 4), 'short.gguf')));
    expect(past.field).toBe('output_norm.weight');
    const unknown = await formatError(openCheckpoint(put('t99.gguf', ggufBytes(llamaGgufMetadata(tiny), tinyTensors({ 'blk.0.attn_q.weight': { type: 99 } })))));
    expect(unknown.field).toBe('blk.0.attn_q.weight');
    expect(unknown.message).toContain('unknown ggml tensor type 99');
    const q2k = tinyTensors({ 'blk.0.ffn_gate.weight': { type: 10, shape: [256, 64] } });
    const cfg = { ...tiny, dim: 256, hiddenDim: 64 };
    const e = await formatError(openCheckpoint(put('q2k.gguf', ggufBytes(llamaGgufMetadata(cfg), q2k))));
    expect(e.field).toBe('blk.0.ffn_gate.weight');
    expect(e.message).toContain('Q2_K is not supported');
  });

  it('an unsupported architecture, a missing key, a shape that disagrees with the config', async () => {
    const arch = await formatError(openCheckpoint(put('gpt2.gguf', ggufBytes({ ...llamaGgufMetadata(tiny), 'general.architecture': 'gpt2' }, tinyTensors()))));
    expect(arch.field).toBe('general.architecture');
    const md = llamaGgufMetadata(tiny);
    delete md['llama.block_count'];
    expect((await formatError(openCheckpoint(put('nokey.gguf', ggufBytes(md, tinyTensors()))))).field).toBe('llama.block_count');
    const shape = await formatError(openCheckpoint(put('shape.gguf', ggufBytes(llamaGgufMetadata(tiny), tinyTensors({ 'blk.0.ffn_up.weight': { shape: [32, 63] } })))));
    expect(shape.field).toBe('layers.0.w3');
    expect(shape.message).toContain('[63, 32] (stored as blk.0.ffn_up.weight) does not match [64, 32]');
    const missing = ggufBytes(llamaGgufMetadata(tiny), tinyTensors().filter((t) => t.name !== 'blk.0.attn_v.weight'));
    expect((await formatError(openCheckpoint(put('missing.gguf', missing)))).field).toBe('layers.0.wv');
  });

  it('huge counts in the header are refused before anything is allocated', async () => {
    const bytes = ggufBytes(llamaGgufMetadata(tiny), tinyTensors());
    const v = new DataView(bytes.buffer);
    const big = bytes.slice();
    new DataView(big.buffer).setBigUint64(8, 1n << 40n, true); // tensor_count
    expect((await formatError(openCheckpoint(memorySource(big, 'count.gguf')))).field).toBe('tensor_count');
    // The first key's string length: 2^50 bytes
    const key = bytes.slice();
    new DataView(key.buffer).setBigUint64(24, 1n << 50n, true);
    await formatError(openCheckpoint(memorySource(key, 'key.gguf')));
    expect(v.getUint32(0, true)).toBe(0x46554747);
  });
});

describe.runIf(have)('llama2.c', () => {
  it('truncated, padded, or without a tokenizer', async () => {
    const full = new Uint8Array(readFileSync(STORIES_BIN));
    const tok = memorySource(new Uint8Array(readFileSync(STORIES_TOK)), 'tok512.bin');
    const cut = await formatError(openCheckpoint([memorySource(full.subarray(0, full.length - 100), 's.bin'), tok]));
    expect(cut.message).toContain('truncated');
    const padded = new Uint8Array(full.length + 8);
    padded.set(full);
    expect((await formatError(openCheckpoint([memorySource(padded, 's.bin'), tok]))).field).toBe('header');
    const noTok = await openCheckpoint(STORIES_BIN);
    expect(noTok.vocab).toBeNull();
    const out = path.join(tmp, 'no-tok', 'pkg');
    const e = await formatError(convertCheckpoint(noTok, await directorySink(out), { quant: 'f32' }));
    await noTok.close();
    expect(e.field).toBe('tokenizer');
    expect(e.message).toContain('--tokenizer');
    expect(readdirSync(path.dirname(out))).toEqual([]);
    const nonsense = full.slice(0, 1000);
    new DataView(nonsense.buffer).setInt32(0, -7, true);
    expect((await formatError(openCheckpoint([memorySource(nonsense, 'n.bin'), tok]))).field).toBe('dim');
  });
});

describe.runIf(have)('Hugging Face and Flax folders', () => {
  it('unknown dtype, data past the end, bad header length in safetensors', async () => {
    const cfg = JSON.stringify(hfConfigJson(tiny));
    const folder = (st: Uint8Array) => [memorySource(new TextEncoder().encode(cfg), 'config.json'), memorySource(st, 'model.safetensors'), memorySource(new Uint8Array([0x0a, 0]), 'tokenizer.model')];
    const st = safetensorsBytes([{ name: 'model.embed_tokens.weight', dtype: 'F32', shape: [5, 32], data: new Uint8Array(640) }]);
    const dtype = new TextDecoder().decode(st).replace('"F32"', '"X32"');
    const e = await formatError(openCheckpoint(folder(new TextEncoder().encode(dtype))));
    expect(e.field).toBe('model.embed_tokens.weight');
    expect(e.file).toBe('model.safetensors');
    const past = await formatError(openCheckpoint(folder(st.subarray(0, st.length - 1))));
    expect(past.message).toContain('past the end');
    const len = st.slice();
    new DataView(len.buffer).setBigUint64(0, 1n << 40n, true);
    expect((await formatError(openCheckpoint(folder(len)))).field).toBe('header length');
  });

  it('config that disagrees with the weights, missing tokenizer.model, unsupported model_type', async () => {
    const dir = path.join(tmp, 'hf');
    writeHfFolder(dir);
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: 100 }));
    const shape = await formatError(openCheckpoint(dir));
    expect(shape.field).toBe('layers.0.w1');
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'mistral', architectures: ['MistralForCausalLM'] }));
    expect((await formatError(openCheckpoint(dir))).field).toBe('model_type');
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    rmSync(path.join(dir, 'tokenizer.model'));
    const tok = await formatError(openCheckpoint(dir));
    expect(tok.field).toBe('tokenizer.model');
    // --tokenizer supplies it
    const ok = await openCheckpoint(dir, { tokenizer: STORIES_TOK });
    expect(ok.vocab?.pieces).toHaveLength(512);
    await ok.close();
  });

  it('a truncated Flax msgpack', async () => {
    const dir = path.join(tmp, 'flax');
    writeFlaxFolder(dir);
    const f = path.join(dir, 'flax_model.msgpack');
    writeFileSync(f, readFileSync(f).subarray(0, 300_000));
    const e = await formatError(openCheckpoint(dir));
    expect(e.file).toBe('flax_model.msgpack');
  });
});

/** A source that fails after `okReads` reads, like a file on a disk that goes away mid-conversion. */
function failingAfter(src: ByteSource, okReads: number): ByteSource {
  let n = 0;
  return {
    name: src.name,
    size: src.size,
    read(o, l) {
      if (++n > okReads) return Promise.reject(new ModelFormatError(src.name, 'read failed (simulated I/O error)'));
      return src.read(o, l);
    },
  };
}

describe.runIf(have)('no partial output', () => {
  const ggufCkpt = async (okReads: number): Promise<Checkpoint> =>
    openCheckpoint(failingAfter(memorySource(new Uint8Array(readFileSync(STORIES_GGUF)), 'stories.gguf'), okReads));

  it('a failure mid-conversion removes the temp directory and leaves no package', async () => {
    const parent = path.join(tmp, 'out-fail');
    mkdirSync(parent);
    const out = path.join(parent, 'pkg');
    const err = await convertCheckpoint(await ggufCkpt(20), await directorySink(out), { quant: 'q4', shardBytes: 64 * 1024 }).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('an existing package survives a failed run and is replaced by a successful one', async () => {
    const parent = path.join(tmp, 'out-keep');
    const out = path.join(parent, 'pkg');
    mkdirSync(parent);
    await convertCheckpoint(await ggufCkpt(1e9), await directorySink(out), { quant: 'q8' });
    const before = readFileSync(path.join(out, 'manifest.json'), 'utf8');
    await expect(convertCheckpoint(await ggufCkpt(30), await directorySink(out), { quant: 'f32' })).rejects.toThrow(ModelFormatError);
    expect(readFileSync(path.join(out, 'manifest.json'), 'utf8')).toBe(before);
    expect(readdirSync(parent)).toEqual(['pkg']);
    await convertCheckpoint(await ggufCkpt(1e9), await directorySink(out), { quant: 'f32' });
    expect(readManifest(out).source?.quant).toBe('f32');
    expect(readdirSync(parent)).toEqual(['pkg']);
  });

  it('a NaN in the weights fails naming the tensor and row, leaving nothing', async () => {
    const bytes = new Uint8Array(readFileSync(STORIES_GGUF));
    const g = await readGguf(memorySource(bytes, 'x.gguf'));
    const wv = g.tensors.find((t) => t.name === 'blk.2.attn_v.weight')!;
    const bad = bytes.slice();
    new DataView(bad.buffer).setFloat32(g.dataOffset + wv.offset + (7 * 64 + 3) * 4, NaN, true);
    const out = path.join(tmp, 'out-nan', 'pkg');
    const e = await formatError(convertCheckpoint(await openCheckpoint(memorySource(bad, 'nan.gguf')), await directorySink(out), { quant: 'q4' }));
    expect(e.field).toBe('blk.2.attn_v.weight');
    expect(e.message).toContain('row 7 holds NaN');
    expect(readdirSync(path.dirname(out))).toEqual([]);
  });

  it('an aborted conversion and an impossible shard size leave nothing', async () => {
    const out = path.join(tmp, 'out-abort', 'pkg');
    const ac = new AbortController();
    const p = convertCheckpoint(await ggufCkpt(1e9), await directorySink(out), {
      quant: 'q4', signal: ac.signal, onProgress: (x) => x.tensor === 'layers.1.wq' && ac.abort(),
    });
    await expect(p).rejects.toThrow();
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(path.dirname(out))).toEqual([]);
    await expect(convertCheckpoint(await ggufCkpt(1e9), await directorySink(out), { quant: 'f32', shardBytes: 1024 })).rejects.toThrow(ConvertOptionsError);
    expect(readdirSync(path.dirname(out))).toEqual([]);
  });

  it('refuses to replace a non-empty folder that is not a package', async () => {
    const dir = path.join(tmp, 'not-a-package');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'notes.txt'), 'keep me');
    await expect(directorySink(dir)).rejects.toThrow(ConvertOptionsError);
    expect(readdirSync(dir)).toEqual(['notes.txt']);
  });
});

describe.runIf(have)('manifest validation', () => {
  it('accepts a converted manifest and names the field of each tampering', async () => {
    const out = path.join(tmp, 'valid');
    const ckpt = await openCheckpoint(STORIES_GGUF);
    const m = await convertCheckpoint(ckpt, await directorySink(out), { quant: 'q4', shardBytes: 64 * 1024 });
    await ckpt.close();
    expect(validateManifest(JSON.parse(JSON.stringify(m)))).toEqual(m);
    const tamper = (f: (x: any) => void) => {
      const x = JSON.parse(JSON.stringify(m));
      f(x);
      try {
        validateManifest(x);
      } catch (e) {
        expect(e).toBeInstanceOf(ModelFormatError);
        return (e as ModelFormatError).field;
      }
      return 'accepted';
    };
    expect(tamper((x) => (x.format = 'other'))).toBe('format');
    expect(tamper((x) => x.tensors.pop())).toBe('tensors');
    expect(tamper((x) => (x.tensors[3].chunks[0].data.byteLength += 4))).toBe(`${m.tensors[3].name}.chunks[0].data`);
    expect(tamper((x) => (x.tensors[3].chunks[0].data.offset += 1))).toBe(`${m.tensors[3].name}.chunks[0].data`);
    expect(tamper((x) => (x.tensors[3].chunks[0].scales.offset = x.shards[0].byteSize))).toBe(`${m.tensors[3].name}.chunks[0].scales`);
    expect(tamper((x) => (x.tensors[1].dtype = 'q4'))).toBe(m.tensors[1].name);
    expect(tamper((x) => (x.config.nKvHeads = 3))).toBe('nKvHeads');
    expect(tamper((x) => (x.shards[0].file = '../escape.bin'))).toBe('shards[0]');
  });
});
