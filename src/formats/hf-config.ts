/**
 * What Hugging Face Llama checkpoints (safetensors and Flax) share: config.json, the parameter names, the
 * tokenizer.model beside the weights, and the rotate-half q/k permutation that readers undo.
 */
import { ModelFormatError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import { checkConfig, checkTensors, guessChatTemplate, type Checkpoint, type CheckpointTensor } from './checkpoint.ts';
import { readTokenizerFile } from './llama2c.ts';
import { readAll, type ByteSource } from './source.ts';
import { unpermuteRotary } from './tensor-views.ts';

/** Files of a model folder by base name (a Node directory or a browser folder pick). */
export type FileSet = Map<string, ByteSource & { close?(): Promise<void> }>;

export async function readJson(files: FileSet, name: string, folder: string): Promise<Record<string, unknown>> {
  const src = files.get(name);
  if (!src) throw new ModelFormatError(folder, `${name} is missing; a Hugging Face model folder needs it`, name);
  const bytes = await readAll(src, 64 << 20);
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new ModelFormatError(name, `is not valid JSON (${(err as Error).message})`);
  }
}

export function hfConfig(j: Record<string, unknown>, file = 'config.json'): { config: ModelConfig; tied: boolean } {
  const modelType = j.model_type;
  const archs = Array.isArray(j.architectures) ? j.architectures : [];
  if (modelType !== 'llama' && !archs.some((a) => typeof a === 'string' && a.includes('Llama'))) {
    throw new ModelFormatError(file, `model_type "${String(modelType)}" is not supported; only Llama models convert`, 'model_type');
  }
  const num = (key: string, fallback?: number): number => {
    let v = j[key];
    if (Array.isArray(v)) v = v[0]; // eos_token_id may be a list
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelFormatError(file, v === undefined ? 'required field is missing' : `expected a number, got ${JSON.stringify(v)}`, key);
    return v;
  };
  const nHeads = num('num_attention_heads');
  const dim = num('hidden_size');
  if (j.head_dim !== undefined && j.head_dim !== null && j.head_dim !== dim / nHeads) {
    throw new ModelFormatError(file, `head_dim ${String(j.head_dim)} differs from hidden_size / num_attention_heads; such models are not supported`, 'head_dim');
  }
  let ropeScale = 1;
  const rs = j.rope_scaling as Record<string, unknown> | null | undefined;
  if (rs) {
    const type = rs.type ?? rs.rope_type;
    if (type !== 'linear') throw new ModelFormatError(file, `RoPE scaling "${String(type)}" is not supported (only linear)`, 'rope_scaling');
    if (typeof rs.factor !== 'number') throw new ModelFormatError(file, 'linear RoPE scaling needs a numeric factor', 'rope_scaling.factor');
    ropeScale = rs.factor;
  }
  const config: ModelConfig = {
    dim,
    hiddenDim: num('intermediate_size'),
    nLayers: num('num_hidden_layers'),
    nHeads,
    nKvHeads: num('num_key_value_heads', nHeads),
    vocabSize: num('vocab_size'),
    maxSeqLen: num('max_position_embeddings'),
    normEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    ropeScale,
    bosId: num('bos_token_id', 1),
    eosId: num('eos_token_id', 2),
    chatTemplate: guessChatTemplate(j._name_or_path, j.chat_template),
  };
  checkConfig(config, file);
  return { config, tied: j.tie_word_embeddings === true };
}

const LAYER_PARAMS: Record<string, string> = {
  'input_layernorm.weight': 'rmsAtt', 'self_attn.q_proj.weight': 'wq', 'self_attn.k_proj.weight': 'wk',
  'self_attn.v_proj.weight': 'wv', 'self_attn.o_proj.weight': 'wo', 'post_attention_layernorm.weight': 'rmsFfn',
  'mlp.gate_proj.weight': 'w1', 'mlp.down_proj.weight': 'w2', 'mlp.up_proj.weight': 'w3',
};

/** Our name for a Hugging Face parameter name (dotted, PyTorch style), or undefined if unused (e.g. rotary_emb.inv_freq). */
export function hfToOurName(param: string): string | undefined {
  if (param === 'model.embed_tokens.weight') return 'tokenEmbedding';
  if (param === 'model.norm.weight') return 'rmsFinal';
  if (param === 'lm_head.weight') return 'wcls';
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(param);
  if (m && LAYER_PARAMS[m[2]]) return `layers.${Number(m[1])}.${LAYER_PARAMS[m[2]]}`;
  return undefined;
}

/** Wraps wq/wk so they read in the interleaved RoPE convention (k_proj has nKvHeads heads). */
export function undoRotaryPermutation(tensors: Map<string, CheckpointTensor>, c: ModelConfig, file: string): void {
  for (const [name, t] of tensors) {
    if (name.endsWith('.wq')) tensors.set(name, unpermuteRotary(t, c.nHeads, file));
    else if (name.endsWith('.wk')) tensors.set(name, unpermuteRotary(t, c.nKvHeads, file));
  }
}

/** tokenizer.model from the folder, or the file given with --tokenizer. */
export async function hfTokenizer(files: FileSet, folder: string, override?: ByteSource): Promise<Pick<Checkpoint, 'vocab' | 'tokenizerModel' | 'tokenizerFile'>> {
  const src = override ?? files.get('tokenizer.model');
  if (!src) {
    throw new ModelFormatError(folder, 'tokenizer.model is missing; put the SentencePiece tokenizer.model beside the weights or pass it with --tokenizer', 'tokenizer.model');
  }
  return { vocab: null, tokenizerModel: await readAll(src, 64 << 20), tokenizerFile: src.name };
}

/**
 * The common end of the Hugging Face and Flax readers: drops a tied classifier, un-permutes q/k into the
 * interleaved RoPE form, attaches the tokenizer (an explicit one, else the folder's tokenizer.model) and checks
 * every tensor against the config.
 */
export async function finishHfCheckpoint(
  format: 'safetensors' | 'flax',
  config: ModelConfig,
  tied: boolean,
  tensors: Map<string, CheckpointTensor>,
  files: FileSet,
  folder: string,
  tokenizer?: ByteSource,
): Promise<Checkpoint> {
  if (tied) tensors.delete('wcls');
  undoRotaryPermutation(tensors, config, folder);
  const tok = tokenizer ? await readTokenizerFile(tokenizer, config.vocabSize) : await hfTokenizer(files, folder);
  const ckpt: Checkpoint = {
    format,
    config,
    ...tok,
    tensors,
    file: folder,
    close: async () => {
      for (const f of files.values()) await f.close?.();
    },
  };
  checkTensors(ckpt, folder);
  return ckpt;
}
