/**
 * Opens the checkpoint in a set of files a person picked or dropped: the weights file decides the format, and
 * companion files (tokenizer, config) are matched by name.
 */
import { ModelFormatError } from '../errors.ts';
import type { Checkpoint } from '../formats/checkpoint.ts';
import { openGguf } from '../formats/gguf-checkpoint.ts';
import { blobSource } from '../formats/source.ts';

export async function openDroppedFiles(files: File[]): Promise<Checkpoint> {
  const byExt = (re: RegExp) => files.find((f) => re.test(f.name));
  const gguf = byExt(/\.gguf$/i);
  if (gguf) return openGguf(blobSource(gguf));
  const names = files.map((f) => f.name).join(', ');
  throw new ModelFormatError(
    names,
    'no model file recognised. Drop a .gguf file; a safetensors checkpoint with its config.json and tokenizer.model; ' +
      'a llama2.c .bin with its tokenizer.bin; or a Flax .msgpack with its config.json and tokenizer.model.',
  );
}
