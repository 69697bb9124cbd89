/**
 * Opens the checkpoint in a set of files a person picked or dropped: a GGUF file alone; a llama2.c .bin with its
 * tokenizer.bin; a safetensors or Flax checkpoint with its config.json and tokenizer.model. The readers tell the
 * format from names and first bytes (src/formats/detect.ts).
 */
import type { Checkpoint } from '../formats/checkpoint.ts';
import { openCheckpoint } from '../formats/detect.ts';
import { blobSource } from '../formats/source.ts';

export function openDroppedFiles(files: File[]): Promise<Checkpoint> {
  return openCheckpoint(files.map((f) => blobSource(f)));
}
