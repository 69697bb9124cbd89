/**
 * GGUF quant types against a float64 reference from hand-built blocks: directly through the dequantizer, and end to
 * end through a hand-written GGUF whose every matrix has a different type, converted to an f32 package and with
 * --quant keep (the blocks kept as they are).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConvertOptionsError } from '../../src/errors.ts';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { dequantizeGgml } from '../../src/formats/ggml-dequant.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint } from '../../src/formats/package-writer.ts';
import { f32ToF16Bits } from '../../src/formats/f16.ts';
import { validateManifest } from '../../src/formats/validate.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { ggufBytes, llamaGgufMetadata, readPackageTensor, type GgufTensorSpec } from '../helpers/fixtures.ts';
import { builders, rng, type Blocks } from './ggml-blocks.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'dequant-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function expectClose(got: Float32Array, want: Float64Array, label: string) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    // float32 result of the same products: within one float32 rounding of the reference
    if (Math.abs(got[i] - want[i]) > Math.abs(want[i]) * 2 ** -23 + 1e-30) expect.fail(`${label}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

describe('ggml block dequantization', () => {
  for (const [name, b] of Object.entries(builders)) {
    it(`${name} matches the float64 reference`, () => {
      const { bytes, expected } = b.build(rng(name.length * 7919), 4);
      const out = new Float32Array(expected.length + 3);
      dequantizeGgml(b.type, bytes, expected.length, out, 3);
      expectClose(out.subarray(3), expected, name);
      expect(expected.some((x) => x < 0) && expected.some((x) => x > 0)).toBe(true);
    });
  }
});

const allTypesConfig: ModelConfig = {
  dim: 256, hiddenDim: 256, nLayers: 1, nHeads: 2, nKvHeads: 1, vocabSize: 6, maxSeqLen: 64, normEps: 1e-5,
  ropeTheta: 10000, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none',
};

/**
 * A GGUF whose every matrix has a different type (ffn_gate's is `gateType`), written to `file`; returns each
 * tensor's reference values and its blocks as stored.
 */
function allTypesGguf(file: string, gateType = 'Q4_1'): { want: Map<string, Float64Array>; blocks: Map<string, Uint8Array> } {
  const r = rng(42);
  const want = new Map<string, Float64Array>();
  const blocks = new Map<string, Uint8Array>();
  const tensors: GgufTensorSpec[] = [];
  const dense = (name: string, ours: string, rows: number, cols: number, type: 'F32' | 'F16' | 'BF16') => {
    const vals = Float32Array.from({ length: rows * cols }, () => r() * 2 - 1);
    const h = Uint16Array.from(vals, (v) => (type === 'F16' ? f32ToF16Bits(v) : new Uint32Array(Float32Array.of(v).buffer)[0] >>> 16));
    const expected = Float64Array.from(vals, (v, i) => (type === 'F32' ? v : type === 'F16' ? half(h[i]) : new Float32Array(Uint32Array.of(h[i] << 16).buffer)[0]));
    want.set(ours, expected);
    const data = type === 'F32' ? new Uint8Array(vals.buffer) : new Uint8Array(h.buffer);
    tensors.push({ name, shape: rows === 1 ? [cols] : [cols, rows], ggmlType: type === 'F32' ? 0 : type === 'F16' ? 1 : 30, data });
  };
  const quant = (name: string, ours: string, rows: number, cols: number, kind: string) => {
    const b = builders[kind];
    const { bytes, expected }: Blocks = b.build(r, (rows * cols) / b.blockSize);
    want.set(ours, expected);
    blocks.set(ours, bytes);
    tensors.push({ name, shape: [cols, rows], ggmlType: b.type, data: bytes });
  };
  const kv = 128;
  quant('token_embd.weight', 'tokenEmbedding', 6, 256, 'Q4_K');
  dense('blk.0.attn_norm.weight', 'layers.0.rmsAtt', 1, 256, 'F32');
  quant('blk.0.attn_q.weight', 'layers.0.wq', 256, 256, 'Q5_K');
  quant('blk.0.attn_k.weight', 'layers.0.wk', kv, 256, 'Q6_K');
  quant('blk.0.attn_v.weight', 'layers.0.wv', kv, 256, 'Q8_0');
  quant('blk.0.attn_output.weight', 'layers.0.wo', 256, 256, 'Q4_0');
  dense('blk.0.ffn_norm.weight', 'layers.0.rmsFfn', 1, 256, 'F32');
  quant('blk.0.ffn_gate.weight', 'layers.0.w1', 256, 256, gateType);
  dense('blk.0.ffn_down.weight', 'layers.0.w2', 256, 256, 'F16');
  dense('blk.0.ffn_up.weight', 'layers.0.w3', 256, 256, 'BF16');
  dense('output_norm.weight', 'rmsFinal', 1, 256, 'F32');
  quant('output.weight', 'wcls', 6, 256, 'Q6_K');
  writeFileSync(file, ggufBytes(llamaGgufMetadata(allTypesConfig), tensors));
  return { want, blocks };
}

describe('a hand-built GGUF with every supported type', () => {
  it('converts to an f32 package holding the reference values', async () => {
    const file = path.join(tmp, 'all-types.gguf');
    const { want } = allTypesGguf(file);
    const ckpt = await openCheckpoint(file);
    // Row ranges that do not start at 0 read the right blocks.
    expectClose(await ckpt.tensors.get('layers.0.wq')!.readRows(37, 5), want.get('layers.0.wq')!.subarray(37 * 256, 42 * 256), 'wq rows 37..41');
    const out = path.join(tmp, 'pkg');
    const m = await convertCheckpoint(ckpt, await directorySink(out), { quant: 'f32', shardBytes: 128 * 1024 });
    await ckpt.close();
    expect(m.config).toEqual({ ...allTypesConfig, normEps: Math.fround(1e-5) });
    for (const [name, expected] of want) expectClose(readPackageTensor(out, m, name), expected, name);
  });

  it('--quant keep stores the blocks as they are: the same values, k-quant bytes bit for bit', async () => {
    const file = path.join(tmp, 'keep.gguf');
    const { want, blocks } = allTypesGguf(file, 'Q4_K');
    const ckpt = await openCheckpoint(file);
    const out = path.join(tmp, 'pkg-keep');
    // Small shards: the 256-row matrices split into row chunks.
    const m = await convertCheckpoint(ckpt, await directorySink(out), { quant: 'keep', shardBytes: 32 * 1024 });
    await ckpt.close();
    const dtypes = Object.fromEntries(m.tensors.map((t) => [t.name, t.dtype]));
    expect(dtypes).toEqual({
      tokenEmbedding: 'q4k', 'layers.0.rmsAtt': 'f32', 'layers.0.wq': 'q5k', 'layers.0.wk': 'q6k', 'layers.0.wv': 'q8',
      'layers.0.wo': 'q4', 'layers.0.rmsFfn': 'f32', 'layers.0.w1': 'q4k', 'layers.0.w2': 'f16', 'layers.0.w3': 'f32',
      rmsFinal: 'f32', wcls: 'q6k',
    });
    expect(m.tensors.find((t) => t.name === 'layers.0.wq')!.chunks.length).toBeGreaterThan(1);
    validateManifest(JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')));
    // Every value exactly the file's (one f32 rounding of the float64 reference, as the dequantizer gives).
    for (const [name, expected] of want) expectClose(readPackageTensor(out, m, name), expected, name);
    // The q4k and q5k data are the GGUF's blocks, byte for byte; q6k's are its blocks less d.
    for (const name of ['tokenEmbedding', 'layers.0.w1', 'layers.0.wq', 'wcls']) {
      const t = m.tensors.find((x) => x.name === name)!;
      const data = Buffer.concat(t.chunks.map((c) => readFileSync(path.join(out, m.shards[c.data.shard].file)).subarray(c.data.offset, c.data.offset + c.data.byteLength)));
      const b = blocks.get(name)!;
      const gguf = t.dtype === 'q6k' ? Buffer.concat(Array.from({ length: b.length / 210 }, (_, i) => b.subarray(i * 210, i * 210 + 208))) : b;
      expect(Buffer.compare(data, gguf), name).toBe(0);
    }
  });

  it('--quant keep refuses a type it cannot hold exactly, naming the tensor and the --quant to use, and leaves nothing', async () => {
    const file = path.join(tmp, 'keep-q41.gguf');
    allTypesGguf(file);
    const ckpt = await openCheckpoint(file);
    const out = path.join(tmp, 'pkg-q41');
    const e = await convertCheckpoint(ckpt, await directorySink(out), { quant: 'keep' }).catch((x: unknown) => x);
    await ckpt.close();
    expect(e).toBeInstanceOf(ConvertOptionsError);
    expect((e as Error).message).toMatch(/blk\.0\.ffn_gate\.weight is Q4_1.*--quant q8/);
    expect(existsSync(out)).toBe(false);
  });
});

function half(h: number): number {
  const e = (h >> 10) & 31;
  const f = h & 1023;
  const s = h & 0x8000 ? -1 : 1;
  return e === 0 ? s * f * 2 ** -24 : s * (1 + f / 1024) * 2 ** (e - 15);
}
