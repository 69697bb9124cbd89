/**
 * Test fixtures built from the stories260K weights: a Hugging Face safetensors folder and a Flax msgpack folder as
 * the real exporters lay them out (q/k permuted for rotate-half RoPE, Flax kernels transposed), a small GGUF writer
 * for hand-built files, and a package reader that decodes tensors back to float32.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encode, ExtensionCodec } from '@msgpack/msgpack';
import type { Manifest } from '../../src/formats/manifest.ts';
import { f32ToF16Bits } from '../../src/formats/f16.ts';
import { decodeWeights } from '../../src/formats/quant.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { encodeModelProto } from '../../src/tokenizer/proto.ts';
import { vocabFromLlama2cTokenizer } from '../../src/tokenizer/vocab.ts';
import { loadLlama2cForReference } from '../reference/llama2c.ts';
import { sharedModel } from './models.ts';
import { randomArray } from './random.ts';

export const STORIES_BIN = sharedModel('stories260K/stories260K.bin');
export const STORIES_TOK = sharedModel('stories260K/tok512.bin');
export const STORIES_GGUF = sharedModel('stories260K/stories260Ktok512.gguf');
export const RANDOM_GGUF = sharedModel('random/llama-2-tiny-random.gguf');

export function loadStories(): { config: ModelConfig; weights: Map<string, Float32Array> } {
  const { config, weights } = loadLlama2cForReference(STORIES_BIN);
  return { config, weights: new Map([...weights].map(([k, v]) => [k, Float32Array.from(v)])) };
}

export function storiesTokenizerModel(): Uint8Array {
  return encodeModelProto(vocabFromLlama2cTokenizer(new Uint8Array(readFileSync(STORIES_TOK)), 512));
}

/** Hugging Face's permute(w, n_heads, rows, cols): interleaved row h*hd + 2i + j goes to row h*hd + j*hd/2 + i. */
export function permuteRotary(w: Float32Array, nHeads: number, rows: number, cols: number): Float32Array {
  const hd = rows / nHeads;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const src = h * hd + 2 * i + j;
        const dst = h * hd + j * (hd / 2) + i;
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

export type FixtureDtype = 'F32' | 'F16' | 'BF16';

export function encodeDense(values: Float32Array, dtype: FixtureDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.slice().buffer);
  const h = new Uint16Array(values.length);
  const u = new Uint32Array(values.slice().buffer);
  for (let i = 0; i < values.length; i++) h[i] = dtype === 'F16' ? f32ToF16Bits(values[i]) : u[i] >>> 16; // bf16: truncate
  return new Uint8Array(h.buffer);
}

/** HF parameter name -> [our name, permute q/k with this many heads (0: none)]. */
function hfParams(c: ModelConfig): [string, string, number][] {
  const out: [string, string, number][] = [['model.embed_tokens.weight', 'tokenEmbedding', 0]];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      [p + 'input_layernorm.weight', `layers.${l}.rmsAtt`, 0],
      [p + 'self_attn.q_proj.weight', `layers.${l}.wq`, c.nHeads],
      [p + 'self_attn.k_proj.weight', `layers.${l}.wk`, c.nKvHeads],
      [p + 'self_attn.v_proj.weight', `layers.${l}.wv`, 0],
      [p + 'self_attn.o_proj.weight', `layers.${l}.wo`, 0],
      [p + 'post_attention_layernorm.weight', `layers.${l}.rmsFfn`, 0],
      [p + 'mlp.gate_proj.weight', `layers.${l}.w1`, 0],
      [p + 'mlp.down_proj.weight', `layers.${l}.w2`, 0],
      [p + 'mlp.up_proj.weight', `layers.${l}.w3`, 0],
    );
  }
  out.push(['model.norm.weight', 'rmsFinal', 0]);
  return out;
}

function shapeOf(c: ModelConfig, ours: string): number[] {
  const kv = (c.dim / c.nHeads) * c.nKvHeads;
  const kind = ours.split('.').pop()!;
  const shapes: Record<string, number[]> = {
    tokenEmbedding: [c.vocabSize, c.dim], rmsAtt: [c.dim], rmsFfn: [c.dim], rmsFinal: [c.dim],
    wq: [c.dim, c.dim], wk: [kv, c.dim], wv: [kv, c.dim], wo: [c.dim, c.dim],
    w1: [c.hiddenDim, c.dim], w2: [c.dim, c.hiddenDim], w3: [c.hiddenDim, c.dim], wcls: [c.vocabSize, c.dim],
  };
  return shapes[kind];
}

export function hfConfigJson(c: ModelConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: c.dim, intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers, num_attention_heads: c.nHeads, num_key_value_heads: c.nKvHeads, vocab_size: c.vocabSize,
    max_position_embeddings: c.maxSeqLen, rms_norm_eps: c.normEps, rope_theta: c.ropeTheta, bos_token_id: c.bosId,
    eos_token_id: c.eosId, tie_word_embeddings: true, ...extra,
  };
}

/** Bytes of a safetensors file holding `tensors` in order. */
export function safetensorsBytes(tensors: { name: string; dtype: string; shape: number[]; data: Uint8Array }[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let p = 8 + json.length;
  for (const t of tensors) {
    out.set(t.data, p);
    p += t.data.byteLength;
  }
  return out;
}

/** A Hugging Face folder of stories260K: config.json, tokenizer.model and one or two safetensors shards. */
export function writeHfFolder(dir: string, options: { dtype?: FixtureDtype; shards?: 1 | 2 } = {}): void {
  const { config, weights } = loadStories();
  const dtype = options.dtype ?? 'F32';
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hfConfigJson(config, { torch_dtype: dtype })));
  writeFileSync(path.join(dir, 'tokenizer.model'), storiesTokenizerModel());
  const params = hfParams(config).map(([hf, ours, heads]) => {
    const shape = shapeOf(config, ours);
    const w = weights.get(ours)!;
    const v = heads ? permuteRotary(w, heads, shape[0], shape[1]) : w;
    return { name: hf, dtype, shape, data: encodeDense(v, dtype) };
  });
  if ((options.shards ?? 1) === 1) {
    writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes(params));
    return;
  }
  const half = Math.ceil(params.length / 2);
  const parts = [params.slice(0, half), params.slice(half)];
  const weightMap: Record<string, string> = {};
  parts.forEach((part, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeFileSync(path.join(dir, file), safetensorsBytes(part));
    for (const p of part) weightMap[p.name] = file;
  });
  writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}

/** A numpy array as flax.serialization writes it: msgpack ext type 1 around [shape, dtype name, C-order bytes]. */
class NdArray {
  constructor(readonly shape: number[], readonly dtype: string, readonly data: Uint8Array) {}
}

const flaxCodec = new ExtensionCodec();
flaxCodec.register({
  type: 1,
  encode: (v: unknown) => (v instanceof NdArray ? encode([v.shape, v.dtype, v.data]) : null),
  decode: () => null,
});

export function flaxArray(shape: number[], dtype: string, data: Uint8Array): unknown {
  return new NdArray(shape, dtype, data);
}

export function flaxMsgpackBytes(tree: unknown): Uint8Array {
  return encode(tree, { extensionCodec: flaxCodec });
}

function setPath(tree: Record<string, unknown>, parts: string[], value: unknown) {
  let node = tree;
  for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
  node[parts[parts.length - 1]] = value;
}

/** A Flax folder of stories260K as FlaxLlamaForCausalLM.save_pretrained lays it out (optionally two shards). */
export function writeFlaxFolder(dir: string, options: { dtype?: FixtureDtype; shards?: 1 | 2; untied?: boolean; paramsRoot?: boolean } = {}): void {
  const { config, weights } = loadStories();
  const dtype = options.dtype ?? 'F32';
  const npName = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hfConfigJson(config, { tie_word_embeddings: !options.untied })));
  writeFileSync(path.join(dir, 'tokenizer.model'), storiesTokenizerModel());
  const leaves: [string[], NdArray][] = [];
  const params = hfParams(config);
  if (options.untied) params.push(['lm_head.weight', 'tokenEmbedding', 0]);
  for (const [hf, ours, heads] of params) {
    const shape = shapeOf(config, ours);
    let v = weights.get(ours)!;
    if (heads) v = permuteRotary(v, heads, shape[0], shape[1]);
    const parts = hf.split('.');
    parts.pop();
    if (hf === 'model.embed_tokens.weight') leaves.push([[...parts, 'embedding'], new NdArray(shape, npName, encodeDense(v, dtype))]);
    else if (shape.length === 2) leaves.push([[...parts, 'kernel'], new NdArray([shape[1], shape[0]], npName, encodeDense(transpose(v, shape[0], shape[1]), dtype))]);
    else leaves.push([[...parts, 'weight'], new NdArray(shape, npName, encodeDense(v, dtype))]);
  }
  const groups = (options.shards ?? 1) === 1 ? [leaves] : [leaves.slice(0, 20), leaves.slice(20)];
  const weightMap: Record<string, string> = {};
  groups.forEach((g, i) => {
    const tree: Record<string, unknown> = {};
    for (const [p, a] of g) setPath(tree, options.paramsRoot ? ['params', ...p] : p, a);
    const file = groups.length === 1 ? 'flax_model.msgpack' : `flax_model-0000${i + 1}-of-00002.msgpack`;
    writeFileSync(path.join(dir, file), flaxMsgpackBytes(tree));
    for (const [p] of g) weightMap[p.join('/')] = file;
  });
  if (groups.length > 1) writeFileSync(path.join(dir, 'flax_model.msgpack.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}

// ---- GGUF writer for hand-built files ----

export type GgufValue = string | boolean | number | { f32: number } | { u64: number } | string[] | number[] | { f32s: number[] };

export interface GgufTensorSpec {
  name: string;
  /** ggml order: [cols, rows]. */
  shape: number[];
  ggmlType: number;
  data: Uint8Array;
}

/** A GGUF v3 file: metadata (integers as u32, { f32 } as float32) and tensors aligned to general.alignment (32). */
export function ggufBytes(metadata: Record<string, GgufValue>, tensors: GgufTensorSpec[], version = 3): Uint8Array {
  const parts: number[] = [];
  const bytes = (b: Uint8Array | number[]) => parts.push(...b);
  const u32 = (v: number) => bytes(new Uint8Array(new Uint32Array([v]).buffer));
  const u64 = (v: number) => bytes(new Uint8Array(new BigUint64Array([BigInt(v)]).buffer));
  const f32 = (v: number) => bytes(new Uint8Array(new Float32Array([v]).buffer));
  const str = (s: string) => {
    const e = new TextEncoder().encode(s);
    u64(e.length);
    bytes(e);
  };
  u32(0x46554747);
  u32(version);
  u64(tensors.length);
  u64(Object.keys(metadata).length);
  for (const [k, v] of Object.entries(metadata)) {
    str(k);
    if (typeof v === 'string') (u32(8), str(v));
    else if (typeof v === 'boolean') (u32(7), bytes([v ? 1 : 0]));
    else if (typeof v === 'number') (u32(4), u32(v));
    else if (Array.isArray(v) && typeof v[0] === 'string') (u32(9), u32(8), u64(v.length), (v as string[]).forEach(str));
    else if (Array.isArray(v)) (u32(9), u32(5), u64(v.length), (v as number[]).forEach((x) => bytes(new Uint8Array(new Int32Array([x]).buffer))));
    else if ('f32s' in v) (u32(9), u32(6), u64(v.f32s.length), v.f32s.forEach(f32));
    else if ('f32' in v) (u32(6), f32(v.f32));
    else (u32(10), u64(v.u64));
  }
  const align = typeof metadata['general.alignment'] === 'number' ? metadata['general.alignment'] : 32;
  let off = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(off);
    off = Math.ceil((off + t.data.byteLength) / align) * align;
  }
  tensors.forEach((t, i) => {
    str(t.name);
    u32(t.shape.length);
    t.shape.forEach(u64);
    u32(t.ggmlType);
    u64(offsets[i]);
  });
  const dataStart = Math.ceil(parts.length / align) * align;
  const out = new Uint8Array(dataStart + off);
  out.set(parts);
  tensors.forEach((t, i) => out.set(t.data, dataStart + offsets[i]));
  return out;
}

/** A one-layer Llama small enough to convert in milliseconds, with a five-piece vocab. */
export const TINY_CONFIG: ModelConfig = {
  dim: 32, hiddenDim: 64, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 5, maxSeqLen: 16, normEps: 1e-5,
  ropeTheta: 10000, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none',
};

/** F32 GGUF tensors for TINY_CONFIG (shared classifier), of small seeded random values. */
export function tinyGgufTensors(): GgufTensorSpec[] {
  const spec: [string, number[]][] = [
    ['token_embd.weight', [32, 5]], ['blk.0.attn_norm.weight', [32]], ['blk.0.attn_q.weight', [32, 32]],
    ['blk.0.attn_k.weight', [32, 32]], ['blk.0.attn_v.weight', [32, 32]], ['blk.0.attn_output.weight', [32, 32]],
    ['blk.0.ffn_norm.weight', [32]], ['blk.0.ffn_gate.weight', [32, 64]], ['blk.0.ffn_down.weight', [64, 32]],
    ['blk.0.ffn_up.weight', [32, 64]], ['output_norm.weight', [32]],
  ];
  return spec.map(([name, shape], i) => {
    const values = randomArray(shape.reduce((a, b) => a * b, 1), 10 + i, 0.1);
    return { name, shape, ggmlType: 0, data: new Uint8Array(values.buffer) };
  });
}

/** Minimal llama GGUF metadata for a config (vocab of `n` placeholder pieces). */
export function llamaGgufMetadata(c: ModelConfig): Record<string, GgufValue> {
  const pieces = Array.from({ length: c.vocabSize }, (_, i) => (i === 0 ? '<unk>' : i === 1 ? '<s>' : i === 2 ? '</s>' : `p${i}`));
  return {
    'general.architecture': 'llama',
    'llama.context_length': c.maxSeqLen,
    'llama.embedding_length': c.dim,
    'llama.feed_forward_length': c.hiddenDim,
    'llama.block_count': c.nLayers,
    'llama.attention.head_count': c.nHeads,
    'llama.attention.head_count_kv': c.nKvHeads,
    'llama.attention.layer_norm_rms_epsilon': { f32: c.normEps },
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': pieces,
    'tokenizer.ggml.scores': { f32s: pieces.map((_, i) => -i) },
    'tokenizer.ggml.token_type': pieces.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : 1)),
  };
}

// ---- reading packages back ----

export function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
}

/** A package tensor decoded to float32 [rows, cols] from its chunks. */
export function readPackageTensor(dir: string, m: Manifest, name: string): Float32Array {
  const t = m.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name} in the package`);
  const cols = t.shape[t.shape.length - 1];
  const rows = t.shape.length === 2 ? t.shape[0] : 1;
  const out = new Float32Array(rows * cols);
  const shards = new Map<number, Uint8Array>();
  const shard = (i: number) => {
    if (!shards.has(i)) shards.set(i, new Uint8Array(readFileSync(path.join(dir, m.shards[i].file))));
    return shards.get(i)!;
  };
  for (const c of t.chunks) {
    const data = shard(c.data.shard).slice(c.data.offset, c.data.offset + c.data.byteLength);
    const scales = c.scales ? shard(c.scales.shard).slice(c.scales.offset, c.scales.offset + c.scales.byteLength) : undefined;
    out.set(decodeWeights({ data, scales }, c.rows, cols, t.dtype, t.scaleDtype), c.rowStart * cols);
  }
  return out;
}
