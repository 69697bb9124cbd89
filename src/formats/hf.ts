/**
 * Hugging Face Llama folder: config.json, model.safetensors (or shards listed in model.safetensors.index.json),
 * tokenizer.model. Tensors stream from the shards; q_proj/k_proj are read back in interleaved RoPE form.
 */
import { ModelFormatError } from '../errors.ts';
import type { Checkpoint, CheckpointTensor } from './checkpoint.ts';
import { finishHfCheckpoint, hfConfig, hfToOurName, readJson, type FileSet } from './hf-config.ts';
import { isDenseDtype, readSafetensors } from './safetensors.ts';
import { denseTensor } from './tensor-views.ts';
import type { ByteSource } from './source.ts';

const INDEX = 'model.safetensors.index.json';

/** The safetensors files of a folder: the index's shards, or model.safetensors. */
async function shardNames(files: FileSet, folder: string): Promise<string[]> {
  if (files.has(INDEX)) {
    const index = await readJson(files, INDEX, folder);
    const map = index.weight_map;
    if (!map || typeof map !== 'object') throw new ModelFormatError(INDEX, 'has no weight_map object', 'weight_map');
    const names = [...new Set(Object.values(map as Record<string, unknown>))];
    for (const n of names) {
      if (typeof n !== 'string' || !files.has(n)) throw new ModelFormatError(INDEX, `lists shard ${JSON.stringify(n)}, which is not in the folder; download every shard`, 'weight_map');
    }
    return names as string[];
  }
  if (files.has('model.safetensors')) return ['model.safetensors'];
  const any = [...files.keys()].filter((n) => n.endsWith('.safetensors')).sort();
  if (any.length === 1) return any;
  throw new ModelFormatError(folder, `no model.safetensors or ${INDEX} in the folder`, 'model.safetensors');
}

export async function openHuggingFace(files: FileSet, options: { folder?: string; tokenizer?: ByteSource & { close?(): Promise<void> } } = {}): Promise<Checkpoint> {
  const folder = options.folder ?? 'model folder';
  const { config, tied } = hfConfig(await readJson(files, 'config.json', folder));
  const tensors = new Map<string, CheckpointTensor>();
  for (const shard of await shardNames(files, folder)) {
    const src = files.get(shard)!;
    const { entries } = await readSafetensors(src);
    for (const e of entries.values()) {
      const name = hfToOurName(e.name);
      if (!name) continue;
      if (!isDenseDtype(e.dtype)) throw new ModelFormatError(shard, `dtype ${e.dtype} is not supported; expected F32, F16 or BF16`, e.name);
      if (e.shape.length < 1 || e.shape.length > 2) throw new ModelFormatError(shard, `shape [${e.shape}] is not a vector or matrix`, e.name);
      if (tensors.has(name)) throw new ModelFormatError(shard, 'tensor appears in more than one shard', e.name);
      tensors.set(name, { ...denseTensor(src, name, e.offset, e.shape, e.dtype), sourceName: e.name });
    }
  }
  return finishHfCheckpoint('safetensors', config, tied, tensors, files, folder, options.tokenizer);
}
