/**
 * A header or config whose layer count or width is corrupt (2^24 layers, or one flipped bit) is refused with a
 * ModelFormatError naming the file and field, quickly and without building anything per layer.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.ts';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { memorySource } from '../../src/formats/source.ts';
import { validateManifest } from '../../src/formats/validate.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { ggufBytes, llamaGgufMetadata, writeFlaxFolder, writeHfFolder } from '../helpers/fixtures.ts';
import { haveSharedModel } from '../helpers/models.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'huge-counts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const have = haveSharedModel('stories260K/stories260K.bin');

const HUGE = 1 << 24;
/**
 * A bound on refusal, not a speed measurement: a guarded refusal reads one header (milliseconds), while the
 * unguarded paths took 9 to 52 s. The margin leaves room for a heavily loaded shared machine.
 */
const FAST_MS = 4000;

const tiny: ModelConfig = {
  dim: 32, hiddenDim: 64, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 5, maxSeqLen: 16, normEps: 1e-5,
  ropeTheta: 10000, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none',
};

/** Awaits a rejection, checks it is a ModelFormatError naming `file` and `field`, and that it came fast. */
async function refusedFast(run: () => Promise<unknown> | unknown, file: string, field: string): Promise<ModelFormatError> {
  const t0 = performance.now();
  const err = await Promise.resolve().then(run).then(() => null, (e: unknown) => e);
  const ms = performance.now() - t0;
  expect(err).toBeInstanceOf(ModelFormatError);
  const e = err as ModelFormatError;
  expect(e.file).toBe(file);
  expect(e.field).toBe(field);
  expect(ms).toBeLessThan(FAST_MS);
  return e;
}

/** A llama2.c legacy checkpoint of `tiny` with a shared classifier, all weights zero. */
function llama2cBytes(c: ModelConfig): Uint8Array {
  const kv = (c.dim / c.nHeads) * c.nKvHeads;
  const floats = c.vocabSize * c.dim
    + c.nLayers * (2 * c.dim + 2 * c.dim * c.dim + 2 * kv * c.dim + 3 * c.hiddenDim * c.dim)
    + c.dim + c.maxSeqLen * (c.dim / c.nHeads);
  const out = new Uint8Array(28 + floats * 4);
  const v = new DataView(out.buffer);
  [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.vocabSize, c.maxSeqLen].forEach((x, i) => v.setInt32(i * 4, x, true));
  return out;
}

function ggufTensors(c: ModelConfig) {
  const spec: [string, number[]][] = [['token_embd.weight', [c.dim, c.vocabSize]], ['output_norm.weight', [c.dim]]];
  for (let l = 0; l < c.nLayers; l++) {
    spec.push(
      [`blk.${l}.attn_norm.weight`, [c.dim]], [`blk.${l}.attn_q.weight`, [c.dim, c.dim]], [`blk.${l}.attn_k.weight`, [c.dim, c.dim]],
      [`blk.${l}.attn_v.weight`, [c.dim, c.dim]], [`blk.${l}.attn_output.weight`, [c.dim, c.dim]], [`blk.${l}.ffn_norm.weight`, [c.dim]],
      [`blk.${l}.ffn_gate.weight`, [c.dim, c.hiddenDim]], [`blk.${l}.ffn_down.weight`, [c.hiddenDim, c.dim]],
      [`blk.${l}.ffn_up.weight`, [c.dim, c.hiddenDim]],
    );
  }
  return spec.map(([name, shape]) => ({ name, shape, ggmlType: 0, data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 4) }));
}

describe('llama2.c header', () => {
  it('an intact tiny checkpoint opens; 2^24 layers or a flipped layer bit is refused as a header/file-size mismatch', async () => {
    const ok = await openCheckpoint(memorySource(llama2cBytes(tiny), 'ok.bin'));
    expect(ok.config.nLayers).toBe(1);
    await ok.close();
    for (const [name, nLayers] of [['huge.bin', HUGE], ['flip.bin', 1 ^ (1 << 20)]] as const) {
      const bytes = llama2cBytes(tiny);
      new DataView(bytes.buffer).setInt32(8, nLayers, true);
      const e = await refusedFast(() => openCheckpoint(memorySource(bytes, name)), name, 'header');
      expect(e.message).toContain(`n_layers ${nLayers}`);
      expect(e.message).toContain(`the file has ${bytes.length}`);
    }
    // A flipped bit in the width is refused the same way.
    const wide = llama2cBytes(tiny);
    new DataView(wide.buffer).setInt32(0, 32 ^ (1 << 20), true);
    await refusedFast(() => openCheckpoint(memorySource(wide, 'wide.bin')), 'wide.bin', 'header');
  });
});

describe('GGUF metadata', () => {
  it('block_count of 2^24 or with a flipped bit is refused naming nLayers', async () => {
    const ok = await openCheckpoint(memorySource(ggufBytes(llamaGgufMetadata(tiny), ggufTensors(tiny)), 'ok.gguf'));
    expect(ok.tensors.size).toBe(11);
    await ok.close();
    for (const [name, nLayers] of [['huge.gguf', HUGE], ['flip.gguf', 1 ^ (1 << 20)]] as const) {
      const bytes = ggufBytes(llamaGgufMetadata({ ...tiny, nLayers }), ggufTensors(tiny));
      const e = await refusedFast(() => openCheckpoint(memorySource(bytes, name)), name, 'nLayers');
      expect(e.message).toContain(`${nLayers} layers`);
      expect(e.message).toContain('holds tensors for 1');
    }
  });
});

describe.runIf(have)('Hugging Face and Flax config.json', () => {
  it('num_hidden_layers of 2^24 or with a flipped bit is refused naming nLayers', async () => {
    for (const kind of ['hf', 'flax'] as const) {
      const dir = path.join(tmp, kind);
      if (kind === 'hf') writeHfFolder(dir);
      else writeFlaxFolder(dir);
      const cfgFile = path.join(dir, 'config.json');
      const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
      for (const n of [HUGE, cfg.num_hidden_layers ^ (1 << 20)]) {
        writeFileSync(cfgFile, JSON.stringify({ ...cfg, num_hidden_layers: n }));
        const e = await refusedFast(() => openCheckpoint(dir), kind, 'nLayers');
        expect(e.message).toContain(`${n} layers`);
      }
    }
  });
});

describe('package manifest', () => {
  const manifest = (config: ModelConfig, tensors: number, shardBytes: number) => ({
    format: 'llama-webgpu-package', formatVersion: 1, name: 'm', config, sharedClassifier: true,
    tokenizer: { file: 'tokenizer.model', byteSize: 10, sha256: '0'.repeat(64) },
    shards: [{ file: 'shard-00000.bin', byteSize: shardBytes, sha256: '0'.repeat(64) }],
    tensors: Array.from({ length: tensors }, (_, i) => ({ name: `t${i}`, dtype: 'f32', shape: [1], chunks: [] })),
  });

  it('nLayers of 2^24 or with a flipped bit disagrees with the tensor list', async () => {
    for (const nLayers of [HUGE, 1 ^ (1 << 20)]) {
      const e = await refusedFast(() => validateManifest(manifest({ ...tiny, nLayers }, 11, 1 << 20)), 'manifest.json', 'tensors');
      expect(e.message).toContain(`nLayers ${nLayers}`);
    }
  });

  it('a width with a flipped bit disagrees with the shard sizes', async () => {
    const dim = 32 ^ (1 << 20);
    const e = await refusedFast(() => validateManifest(manifest({ ...tiny, dim }, 11, 1 << 20), 'pkg/manifest.json'), 'pkg/manifest.json', 'config');
    expect(e.message).toContain(`the shards hold ${1 << 20}`);
    // An honest tiny config with the same list gets past the size check to the per-tensor checks.
    const ok = await refusedFast(() => validateManifest(manifest(tiny, 11, 1 << 20)), 'manifest.json', 'tokenEmbedding');
    expect(ok.message).toContain('missing');
  });
});
