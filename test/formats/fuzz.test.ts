/**
 * Seeded fuzzing of the readers: hundreds of mutations (flipped bytes, overwritten length fields, truncation) of the
 * sample GGUF, a safetensors header and a Flax msgpack. Each run must end with the checkpoint open and readable or
 * with a typed error (LlamaWebGpuError); anything else (TypeError, RangeError, out of memory, a hang) fails.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LlamaWebGpuError } from '../../src/errors.ts';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { memorySource, type ByteSource } from '../../src/formats/source.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { flaxArray, flaxMsgpackBytes, hfConfigJson, safetensorsBytes, STORIES_GGUF } from '../helpers/fixtures.ts';
import { haveSharedModel } from '../helpers/models.ts';
import { rng } from './ggml-blocks.ts';

const tiny: ModelConfig = {
  dim: 32, hiddenDim: 64, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 5, maxSeqLen: 16, normEps: 1e-5,
  ropeTheta: 1e4, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none',
};

function mutate(base: Uint8Array, r: () => number, region: number): Uint8Array {
  const kind = Math.floor(r() * 4);
  if (kind === 0) return base.subarray(0, Math.floor(r() * base.length)); // truncate
  const out = base.slice();
  const at = () => Math.floor(r() * Math.min(region, out.length));
  if (kind === 1) {
    for (let i = 0, n = 1 + Math.floor(r() * 8); i < n; i++) out[at()] = Math.floor(r() * 256);
  } else if (kind === 2) {
    // a plausible-looking huge or small length/count written over 8 bytes
    const o = at() & ~3;
    const v = [0n, 1n, 0xffffffffn, 1n << 31n, 1n << 40n, (1n << 63n) + 5n, BigInt(Math.floor(r() * 1e6))][Math.floor(r() * 7)];
    if (o + 8 <= out.length) new DataView(out.buffer).setBigUint64(o, v, true);
  } else {
    const o = at();
    out[o] ^= 1 << Math.floor(r() * 8);
  }
  return out;
}

/** Opens, reads every tensor fully, closes; returns 'ok' or the typed error's code. */
async function exercise(sources: ByteSource[]): Promise<string> {
  try {
    const ckpt = await openCheckpoint(sources);
    for (const t of ckpt.tensors.values()) await t.readRows(0, t.shape.length === 2 ? t.shape[0] : 1);
    await ckpt.close();
    return 'ok';
  } catch (err) {
    if (err instanceof LlamaWebGpuError) return err.code;
    throw err;
  }
}

/** `runs` mutations of `base` (mostly within its first `region` bytes), each opened as `files(mutated)`. */
async function fuzz(label: string, runs: number, seed: number, base: Uint8Array, region: (r: () => number) => number, files: (bytes: Uint8Array) => ByteSource[]) {
  // The unmutated input opens: the mutations below are what fails.
  expect(await exercise(files(base))).toBe('ok');
  const r = rng(seed);
  const make = () => files(mutate(base, r, region(r)));
  const outcomes = new Map<string, number>();
  const heapStart = process.memoryUsage().heapUsed;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    let outcome: string;
    try {
      outcome = await exercise(make());
    } catch (err) {
      expect.fail(`${label} run ${i} (seed ${seed}): untyped ${(err as Error).name}: ${(err as Error).message}`);
    }
    expect(performance.now() - started, `${label} run ${i} took too long`).toBeLessThan(5000);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  expect(process.memoryUsage().heapUsed - heapStart).toBeLessThan(512 << 20);
  return outcomes;
}

describe.runIf(haveSharedModel('stories260K/stories260Ktok512.gguf'))('fuzzing', () => {
  it('mutated GGUF files: only typed errors', async () => {
    const base = new Uint8Array(readFileSync(STORIES_GGUF));
    // Mostly the header (metadata, tensor infos: the first 14176 bytes), where the lengths and offsets live.
    const outcomes = await fuzz('gguf', 400, 1234, base, (r) => (r() < 0.9 ? 14176 : base.length), (b) => [memorySource(b, 'fuzz.gguf')]);
    expect(outcomes.get('MODEL_FORMAT')).toBeGreaterThan(100);
    expect(outcomes.get('ok')).toBeGreaterThan(0);
  });

  it('mutated safetensors headers: only typed errors', async () => {
    const cfg = hfConfigJson(tiny);
    const names: [string, number[]][] = [
      ['model.embed_tokens.weight', [5, 32]], ['model.layers.0.input_layernorm.weight', [32]],
      ['model.layers.0.self_attn.q_proj.weight', [32, 32]], ['model.layers.0.self_attn.k_proj.weight', [32, 32]],
      ['model.layers.0.self_attn.v_proj.weight', [32, 32]], ['model.layers.0.self_attn.o_proj.weight', [32, 32]],
      ['model.layers.0.post_attention_layernorm.weight', [32]], ['model.layers.0.mlp.gate_proj.weight', [64, 32]],
      ['model.layers.0.mlp.down_proj.weight', [32, 64]], ['model.layers.0.mlp.up_proj.weight', [64, 32]], ['model.norm.weight', [32]],
    ];
    const st = safetensorsBytes(names.map(([name, shape]) => ({ name, dtype: 'F16', shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 2) })));
    const headerEnd = 8 + Number(new DataView(st.buffer).getBigUint64(0, true));
    const config = new TextEncoder().encode(JSON.stringify(cfg));
    const outcomes = await fuzz('safetensors', 300, 99, st, () => headerEnd, (b) => [
      memorySource(config, 'config.json'),
      memorySource(new Uint8Array([0x0a, 0x00]), 'tokenizer.model'),
      memorySource(b, 'model.safetensors'),
    ]);
    // Nearly any change to the JSON header breaks it; what matters is that every break is reported as such.
    expect(outcomes.get('MODEL_FORMAT')).toBeGreaterThan(250);
  });

  it('mutated Flax msgpack files: only typed errors', async () => {
    const arr = (shape: number[]) => flaxArray(shape, 'float16', new Uint8Array(shape.reduce((a, b) => a * b, 1) * 2));
    const dense = (i: number, o: number) => ({ kernel: arr([i, o]) });
    const tree = {
      model: {
        embed_tokens: { embedding: arr([5, 32]) },
        layers: {
          '0': {
            input_layernorm: { weight: arr([32]) }, post_attention_layernorm: { weight: arr([32]) },
            self_attn: { q_proj: dense(32, 32), k_proj: dense(32, 32), v_proj: dense(32, 32), o_proj: dense(32, 32) },
            mlp: { gate_proj: dense(32, 64), down_proj: dense(64, 32), up_proj: dense(32, 64) },
          },
        },
        norm: { weight: arr([32]) },
      },
    };
    const base = flaxMsgpackBytes(tree);
    const config = new TextEncoder().encode(JSON.stringify(hfConfigJson(tiny)));
    const tok = new Uint8Array([0x0a, 0x00]);
    const outcomes = await fuzz('flax', 300, 7, base, () => base.length, (b) => [
      memorySource(config, 'config.json'), memorySource(tok, 'tokenizer.model'), memorySource(b, 'flax_model.msgpack'),
    ]);
    expect(outcomes.get('MODEL_FORMAT')).toBeGreaterThan(50);
    expect(outcomes.get('ok')).toBeGreaterThan(0);
  });
});
