/**
 * Seeded fuzzing of every input the project reads: checkpoints (GGUF, llama2.c, safetensors, Flax msgpack), the
 * tokenizers beside them (SentencePiece tokenizer.model, llama2.c tok512.bin) and model packages (manifest.json,
 * shards). Each mutation (truncation, random bytes, a huge or small length written over 8 bytes, a flipped bit) must
 * end in a typed error (LlamaWebGpuError) or in a package that loads: converted, installed through installFromUrl,
 * its tokenizer loaded and used, its weights uploaded to a GPU. Anything else (TypeError, RangeError, a wasm trap,
 * a hang) fails, naming the format, run and seed.
 *
 * LLAMA_WEBGPU_FUZZ_ITERATIONS sets the mutations per format (default 500); LLAMA_WEBGPU_FUZZ_SEED shifts every
 * seed, so a long run explores new mutations:
 *   LLAMA_WEBGPU_FUZZ_ITERATIONS=5000 LLAMA_WEBGPU_FUZZ_SEED=7 CI=true npx vitest run test/formats/fuzz.test.ts
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlamaWebGpuError } from '../../src/errors.ts';
import type { Checkpoint } from '../../src/formats/checkpoint.ts';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { convertCheckpoint, type PackageSink } from '../../src/formats/package-writer.ts';
import { memorySource, type ByteSource } from '../../src/formats/source.ts';
import type { Gpu } from '../../src/gpu/device.ts';
import { destroyWeight } from '../../src/gpu/weights.ts';
import { loadWeights } from '../../src/loader/load.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { installFromUrl } from '../../src/storage/install.ts';
import type { ModelStore } from '../../src/storage/store.ts';
import { encodeModelProto } from '../../src/tokenizer/proto.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { vocabFromLlama2cTokenizer } from '../../src/tokenizer/vocab.ts';
import { precompiledCharsMap, withCharsMap } from '../helpers/charsmap.ts';
import {
  flaxArray, flaxMsgpackBytes, ggufBytes, hfConfigJson, llamaGgufMetadata, safetensorsBytes, STORIES_GGUF, STORIES_TOK, TINY_CONFIG, tinyGgufTensors,
} from '../helpers/fixtures.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel } from '../helpers/models.ts';
import { randomArray, rng } from '../helpers/random.ts';

function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  const v = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isSafeInteger(v) || v < min) throw new Error(`${name}=${raw}: expected an integer of at least ${min}`);
  return v;
}
const RUNS = envInt('LLAMA_WEBGPU_FUZZ_ITERATIONS', 500, 1);
const SEED = envInt('LLAMA_WEBGPU_FUZZ_SEED', 0, 0);
/** Per format: generous, so only a hang (not a slow machine) ends a test. */
const TIMEOUT_MS = 120_000 + RUNS * 400;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'fuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function mutate(base: Uint8Array, r: () => number, region: number): Uint8Array {
  const kind = Math.floor(r() * 4);
  if (kind === 0) return base.slice(0, Math.floor(r() * base.length)); // truncate
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

// ---- packages: written to memory, served to installFromUrl from memory ----

function memorySink(): PackageSink & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    async writeFile(name, bytes) {
      files.set(name, bytes.slice());
    },
    async openShard(name) {
      const parts: Uint8Array[] = [];
      return {
        async write(bytes) {
          parts.push(bytes.slice());
        },
        async close() {
          const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
          parts.reduce((o, p) => (all.set(p, o), o + p.byteLength), 0);
          files.set(name, all);
        },
      };
    },
    async commit(manifest) {
      files.set('manifest.json', new TextEncoder().encode(JSON.stringify(manifest)));
    },
    async abort() {
      files.clear();
    },
  };
}

function serveFrom(files: Map<string, Uint8Array>): typeof fetch {
  return (async (input: string | URL | Request) => {
    const name = decodeURIComponent(new URL(input instanceof Request ? input.url : String(input)).pathname.split('/').pop() ?? '');
    const bytes = files.get(name);
    return bytes ? new Response(bytes.slice()) : new Response(null, { status: 404, statusText: 'Not Found' });
  }) as typeof fetch;
}

/** Every printable ASCII byte, text the test normalization rules rewrite ("A", "AB", "ﬁ"), accents and an emoji. */
const PROBE_TEXT = `Once upon a time, AB ﬁsh 3 héllo 🦙 ${Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('')}`;

let store: ModelStore;
let gpu: Gpu;
let installs = 0;

/** Installs `files` as a package, then loads it as createEngine does: tokenizer first, then every weight. */
async function installAndLoad(files: Map<string, Uint8Array>): Promise<void> {
  const id = `fuzz-${installs++}`;
  try {
    const { manifest } = await installFromUrl(store, `http://fuzz.invalid/${id}/`, { id, fetch: serveFrom(files) });
    const tokenizer = await Tokenizer.fromModelProto(await store.readFile(id, manifest.tokenizer.file), `${id}/${manifest.tokenizer.file}`);
    try {
      const ids = tokenizer.encode(PROBE_TEXT);
      expect(ids.every((t) => Number.isInteger(t) && t >= 0 && t < manifest.config.vocabSize)).toBe(true);
      tokenizer.decode(ids);
    } finally {
      tokenizer.dispose();
    }
    const weights = await loadWeights(gpu, store, id, manifest);
    for (const w of weights.values()) destroyWeight(w);
  } finally {
    await store.delete(id).catch(() => undefined);
  }
}

/** 'ok' once converted and loaded, or the typed error's code. A package that converts must load: no catch there. */
async function convertAndLoad(open: () => Promise<Checkpoint>): Promise<string> {
  const sink = memorySink();
  let ckpt: Checkpoint | undefined;
  try {
    ckpt = await open();
    await convertCheckpoint(ckpt, sink, { quant: 'f32', shardBytes: 256 << 10 });
  } catch (err) {
    if (err instanceof LlamaWebGpuError) return err.code;
    throw err;
  } finally {
    await ckpt?.close().catch(() => undefined);
  }
  await installAndLoad(sink.files);
  return 'ok';
}

/** 'ok' once installed and loaded, or the typed error's code. */
async function installOutcome(files: Map<string, Uint8Array>): Promise<string> {
  try {
    await installAndLoad(files);
    return 'ok';
  } catch (err) {
    if (err instanceof LlamaWebGpuError) return err.code;
    throw err;
  }
}

/** RUNS inputs from `make` (mutations of `base`); each goes through `run`. */
async function fuzz<T>(label: string, seed: number, base: T, make: (r: () => number) => T, run: (input: T) => Promise<string>) {
  // The unmutated input loads: what fails below is the mutation.
  expect(await run(base)).toBe('ok');
  const r = rng(seed + SEED * 7919);
  const outcomes = new Map<string, number>();
  for (let i = 0; i < RUNS; i++) {
    const input = make(r);
    let outcome: string;
    try {
      outcome = await run(input);
    } catch (err) {
      expect.fail(`${label} run ${i} (seed ${seed}, LLAMA_WEBGPU_FUZZ_SEED ${SEED}): ${(err as Error).name}: ${(err as Error).message}\n${(err as Error).stack}`);
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  console.log(`fuzz ${label}: ${RUNS} mutations: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return outcomes;
}

/** Mutations of `base`, mostly within its first `region(r)` bytes. */
const mutations = (base: Uint8Array, region: (r: () => number) => number) => (r: () => number) => mutate(base, r, region(r));

// ---- inputs ----

/** A valid five-piece tokenizer for the tiny Hugging Face and Flax checkpoints. */
const tinyTokenizer = encodeModelProto({
  pieces: ['<unk>', '<s>', '</s>', '\u2581a', 'b'], scores: [0, 0, 0, -1, -2], types: [2, 3, 3, 1, 1], unkId: 0, bosId: 1, eosId: 2,
});
const f16Zeros = (shape: number[]) => new Uint8Array(shape.reduce((a, b) => a * b, 1) * 2);

/** A llama2.c checkpoint (legacy header, unshared classifier) of small random weights, for a 512-piece vocab. */
function llama2cBytes(): Uint8Array {
  const [dim, hidden, layers, heads, kvHeads, vocab, seq] = [16, 32, 1, 2, 2, 512, 16];
  const head = dim / heads;
  const floats = vocab * dim * 2 + layers * (2 * dim + 2 * dim * dim + 2 * dim * (kvHeads * head) + 3 * dim * hidden) + dim + seq * head;
  const out = new Uint8Array(28 + floats * 4);
  const view = new DataView(out.buffer);
  [dim, hidden, layers, heads, kvHeads, -vocab, seq].forEach((v, i) => view.setInt32(4 * i, v, true));
  new Float32Array(out.buffer, 28).set(randomArray(floats, 3, 0.1));
  return out;
}

describe.runIf(haveSharedModel('stories260K/stories260Ktok512.gguf'))(`fuzzing, ${RUNS} mutations per format`, () => {
  const tok512 = new Uint8Array(readFileSync(STORIES_TOK));
  const llama2c = llama2cBytes();
  const llama2cWith = (tokenizer: ByteSource) => () => openCheckpoint([memorySource(llama2c, 'fuzz.bin'), tokenizer]);

  beforeAll(async () => {
    store = createFsStore(path.join(tmp, 'store'));
    const gpus = await testGpus();
    expect(gpus.length, 'fuzzing loads packages onto a GPU; none was found').toBeGreaterThan(0);
    gpu = gpus[0].gpu;
  });

  it('GGUF (stories260K): typed errors or packages that load', { timeout: TIMEOUT_MS }, async () => {
    const base = new Uint8Array(readFileSync(STORIES_GGUF));
    // Mostly the header (metadata, tensor infos: the first 14176 bytes), where the lengths and offsets live.
    const outcomes = await fuzz('gguf', 1234, base, mutations(base, (r) => (r() < 0.9 ? 14176 : base.length)), (b) => convertAndLoad(() => openCheckpoint([memorySource(b, 'fuzz.gguf')])));
    expect(outcomes.get('MODEL_FORMAT')).toBeGreaterThan(RUNS / 4);
    expect(outcomes.get('ok')).toBeGreaterThan(0);
  });

  it('llama2.c checkpoints: typed errors or packages that load', { timeout: TIMEOUT_MS }, async () => {
    // The 28-byte header decides every offset; the rest is weights.
    const outcomes = await fuzz('llama2c', 2024, llama2c, mutations(llama2c, (r) => (r() < 0.8 ? 28 : llama2c.length)), (b) =>
      convertAndLoad(() => openCheckpoint([memorySource(b, 'fuzz.bin'), memorySource(tok512, 'tok512.bin')])),
    );
    expect(outcomes.get('MODEL_FORMAT')).toBeGreaterThan(RUNS / 4);
    expect(outcomes.get('ok')).toBeGreaterThan(0);
  });

  it('safetensors headers: typed errors or packages that load', { timeout: TIMEOUT_MS }, async () => {
    const names: [string, number[]][] = [
      ['model.embed_tokens.weight', [5, 32]], ['model.layers.0.input_layernorm.weight', [32]],
      ['model.layers.0.self_attn.q_proj.weight', [32, 32]], ['model.layers.0.self_attn.k_proj.weight', [32, 32]],
      ['model.layers.0.self_attn.v_proj.weight', [32, 32]], ['model.layers.0.self_attn.o_proj.weight', [32, 32]],
      ['model.layers.0.post_attention_layernorm.weight', [32]], ['model.layers.0.mlp.gate_proj.weight', [64, 32]],
      ['model.layers.0.mlp.down_proj.weight', [32, 64]], ['model.layers.0.mlp.up_proj.weight', [64, 32]], ['model.norm.weight', [32]],
    ];
    const st = safetensorsBytes(names.map(([name, shape]) => ({ name, dtype: 'F16', shape, data: f16Zeros(shape) })));
    const headerEnd = 8 + Number(new DataView(st.buffer).getBigUint64(0, true));
    const config = new TextEncoder().encode(JSON.stringify(hfConfigJson(TINY_CONFIG)));
    const outcomes = await fuzz('safetensors', 99, st, mutations(st, () => headerEnd), (b) =>
      convertAndLoad(() => openCheckpoint([memorySource(config, 'config.json'), memorySource(tinyTokenizer, 'tokenizer.model'), memorySource(b, 'model.safetensors')])),
    );
    // Nearly any change to the JSON header breaks it; what matters is that every break is reported as such.
    expect(outcomes.get('MODEL_FORMAT')).toBeGreaterThan(RUNS / 2);
  });

  it('Flax msgpack files: typed errors or packages that load', { timeout: TIMEOUT_MS }, async () => {
    const arr = (shape: number[]) => flaxArray(shape, 'float16', f16Zeros(shape));
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
    const config = new TextEncoder().encode(JSON.stringify(hfConfigJson(TINY_CONFIG)));
    const outcomes = await fuzz('flax', 7, base, mutations(base, () => base.length), (b) =>
      convertAndLoad(() => openCheckpoint([memorySource(config, 'config.json'), memorySource(tinyTokenizer, 'tokenizer.model'), memorySource(b, 'flax_model.msgpack')])),
    );
    expect(outcomes.get('MODEL_FORMAT')).toBeGreaterThan(RUNS / 10);
    expect(outcomes.get('ok')).toBeGreaterThan(0);
  });

  it('tokenizer.model (with normalization rules) beside a checkpoint: typed errors or packages that load', { timeout: TIMEOUT_MS }, async () => {
    const model = withCharsMap(encodeModelProto(vocabFromLlama2cTokenizer(tok512, 512)), precompiledCharsMap({ A: 'a', '\uFB01': 'fi', AB: 'x y' }));
    const outcomes = await fuzz('tokenizer.model', 31, model, mutations(model, () => model.length), (b) => convertAndLoad(llama2cWith(memorySource(b, 'tokenizer.model'))));
    expect(outcomes.get('MODEL_FORMAT')).toBeGreaterThan(RUNS / 10);
    expect(outcomes.get('ok')).toBeGreaterThan(RUNS / 10);
  });

  it('tok512.bin beside a checkpoint: typed errors or packages that load', { timeout: TIMEOUT_MS }, async () => {
    const outcomes = await fuzz('tok512.bin', 512, tok512, mutations(tok512, () => tok512.length), (b) => convertAndLoad(llama2cWith(memorySource(b, 'tok512.bin'))));
    expect(outcomes.get('MODEL_FORMAT')).toBeGreaterThan(RUNS / 10);
    expect(outcomes.get('ok')).toBeGreaterThan(RUNS / 10);
  });

  describe('packages', () => {
    let pkg: Map<string, Uint8Array>;
    beforeAll(async () => {
      const sink = memorySink();
      const ckpt = await openCheckpoint([memorySource(ggufBytes(llamaGgufMetadata(TINY_CONFIG), tinyGgufTensors()), 'tiny.gguf')]);
      await convertCheckpoint(ckpt, sink, { quant: 'q8', shardBytes: 4 << 10 });
      await ckpt.close();
      pkg = sink.files;
      expect([...pkg.keys()].filter((n) => n.startsWith('shard-')).length).toBeGreaterThan(2);
    });

    it('manifest.json: typed errors or packages that load', { timeout: TIMEOUT_MS }, async () => {
      const manifest = pkg.get('manifest.json')!;
      const outcomes = await fuzz('manifest', 4242, manifest, mutations(manifest, () => manifest.length), (b) => installOutcome(new Map([...pkg, ['manifest.json', b]])));
      // Few changes leave a manifest valid with the same files (a name, spacing); the unmutated run covers loading.
      expect(outcomes.get('MODEL_FORMAT')).toBeGreaterThan(RUNS / 4);
    });

    it('shards: typed errors or packages that load', { timeout: TIMEOUT_MS }, async () => {
      const shards = [...pkg.keys()].filter((n) => n.startsWith('shard-'));
      const pickShard = (r: () => number): [string, Uint8Array] => {
        const name = shards[Math.floor(r() * shards.length)];
        return [name, mutate(pkg.get(name)!, r, Infinity)];
      };
      const outcomes = await fuzz('shards', 808, [shards[0], pkg.get(shards[0])!] as [string, Uint8Array], pickShard, ([name, b]) => installOutcome(new Map([...pkg, [name, b]])));
      expect(outcomes.get('SHARD_INTEGRITY')).toBeGreaterThan(RUNS / 2);
    });
  });
});
