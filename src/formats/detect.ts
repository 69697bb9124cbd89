/**
 * Opens any supported checkpoint: a GGUF file, a llama2.c .bin (with a separate tokenizer), a Hugging Face
 * safetensors folder or a Flax folder. In the browser pass the picked File(s) as ByteSources (blobSource); in Node
 * pass a path, which node-files.ts turns into sources.
 */
import { ModelFormatError } from '../errors.ts';
import type { Checkpoint } from './checkpoint.ts';
import { openFlax } from './flax.ts';
import { GGUF_MAGIC } from './gguf.ts';
import { openGguf } from './gguf-checkpoint.ts';
import type { FileSet } from './hf-config.ts';
import { openHuggingFace } from './hf.ts';
import { openLlama2c } from './llama2c.ts';
import type { ByteSource } from './source.ts';

type Closable = ByteSource & { close?(): Promise<void> };

export interface OpenCheckpointOptions {
  /** tokenizer.bin or tokenizer.model for checkpoints without one (llama2.c), or to override a folder's. */
  tokenizer?: string | Closable;
}

export type CheckpointKind = 'gguf' | 'llama2c' | 'safetensors' | 'flax';

/** tokenizer.model, tokenizer.bin, tok512.bin: tokenizers that travel beside llama2.c checkpoints. */
const TOKENIZER_FILE = /^tok[\w-]*\.(bin|model)$/;
const isSideFile = (n: string) => n.endsWith('.json') || TOKENIZER_FILE.test(n);

/** Which reader a set of files needs, from names and the first bytes. */
export async function detectKind(files: FileSet, label: string): Promise<CheckpointKind> {
  const names = [...files.keys()];
  if (names.some((n) => n === 'flax_model.msgpack' || n === 'flax_model.msgpack.index.json' || n.endsWith('.msgpack'))) return 'flax';
  if (names.some((n) => n.endsWith('.safetensors') || n === 'model.safetensors.index.json')) return 'safetensors';
  if (names.some((n) => /^pytorch_model.*\.bin$/.test(n))) {
    throw new ModelFormatError(label, 'PyTorch pickle checkpoints (pytorch_model*.bin) are not supported; download the safetensors files of the model', 'input');
  }
  const weights = names.filter((n) => !isSideFile(n));
  if (weights.length === 1) {
    const src = files.get(weights[0])!;
    if (src.size >= 4) {
      const head = await src.read(0, 4);
      if (new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) === GGUF_MAGIC) return 'gguf';
    }
    if (weights[0].endsWith('.gguf')) return 'gguf'; // the reader reports the bad magic
    return 'llama2c';
  }
  throw new ModelFormatError(label, weights.length
    ? `cannot tell which of ${weights.join(', ')} is the checkpoint; pass the file itself`
    : 'no GGUF, llama2.c, safetensors or Flax weights found', 'input');
}

/** Opens the checkpoint held by `files` (one file, or a model folder's files by base name). */
export async function openFileSet(files: FileSet, label: string, tokenizer?: Closable): Promise<Checkpoint> {
  const ckpt = await openKind(files, label, tokenizer);
  const closeReader = ckpt.close;
  // The reader closes what it used; the folder's other files (config.json, an unused tokenizer) close here too.
  ckpt.close = async () => {
    await closeReader();
    for (const f of [...files.values(), ...(tokenizer ? [tokenizer] : [])]) await f.close?.().catch(() => undefined);
  };
  return ckpt;
}

async function openKind(files: FileSet, label: string, tokenizer?: Closable): Promise<Checkpoint> {
  const kind = await detectKind(files, label);
  switch (kind) {
    case 'gguf':
    case 'llama2c': {
      const weights = [...files.entries()].find(([n]) => !isSideFile(n))!;
      const tok = tokenizer ?? [...files.entries()].find(([n]) => TOKENIZER_FILE.test(n))?.[1];
      return kind === 'gguf' ? openGguf(weights[1]) : openLlama2c(weights[1], { tokenizer: tok });
    }
    case 'safetensors':
      return openHuggingFace(files, { folder: label, tokenizer });
    case 'flax':
      return openFlax(files, { folder: label, tokenizer });
  }
}

export async function openCheckpoint(input: string | Closable | Closable[], options: OpenCheckpointOptions = {}): Promise<Checkpoint> {
  if (typeof input === 'string' || typeof options.tokenizer === 'string') {
    const node = await import('./node-files.ts');
    return node.openCheckpointPath(input, options);
  }
  const list = Array.isArray(input) ? input : [input];
  const files: FileSet = new Map(list.map((s) => [s.name, s]));
  return openFileSet(files, list.length === 1 ? list[0].name : 'model folder', options.tokenizer as Closable | undefined);
}
