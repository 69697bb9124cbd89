/** Node adapter for detect.ts: a path (file or model folder) as ByteSources, all closed again on failure. */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ModelFormatError } from '../errors.ts';
import type { Checkpoint } from './checkpoint.ts';
import { openFileSet, type OpenCheckpointOptions } from './detect.ts';
import type { FileSet } from './hf-config.ts';
import { fileSource } from './node-source.ts';
import type { ByteSource } from './source.ts';

type Closable = ByteSource & { close?(): Promise<void> };

/** Files a reader may need from a model folder; others (READMEs, images) are left unopened. */
const RELEVANT = /(\.json|\.safetensors|\.msgpack|\.gguf|\.bin|^tokenizer\.model)$/;

async function closeAll(files: Iterable<Closable>) {
  for (const f of files) await f.close?.().catch(() => undefined);
}

export async function openCheckpointPath(input: string | Closable | Closable[], options: OpenCheckpointOptions): Promise<Checkpoint> {
  const files: FileSet = new Map();
  let tokenizer: Closable | undefined;
  let label: string;
  try {
    if (typeof options.tokenizer === 'string') tokenizer = await openExisting(options.tokenizer);
    else tokenizer = options.tokenizer;
    if (typeof input !== 'string') {
      for (const s of Array.isArray(input) ? input : [input]) files.set(s.name, s);
      label = files.size === 1 ? [...files.keys()][0] : 'model folder';
    } else {
      const abs = path.resolve(input);
      const st = await stat(abs).catch(() => null);
      if (!st) throw new ModelFormatError(input, 'no such file or folder; check the path', 'input');
      label = path.basename(abs);
      if (st.isDirectory()) {
        for (const name of (await readdir(abs)).sort()) {
          if (RELEVANT.test(name)) files.set(name, await fileSource(path.join(abs, name)));
        }
      } else {
        const name = path.basename(abs);
        files.set(name, await fileSource(abs));
        // Hugging Face / Flax weight files need config.json and tokenizer.model from their folder.
        if (/\.(safetensors|msgpack)$/.test(name)) {
          for (const extra of ['config.json', 'tokenizer.model']) {
            const p = path.join(path.dirname(abs), extra);
            if (await stat(p).catch(() => null)) files.set(extra, await fileSource(p));
          }
        }
      }
    }
    return await openFileSet(files, label, tokenizer);
  } catch (err) {
    await closeAll(files.values());
    if (tokenizer) await closeAll([tokenizer]);
    throw err;
  }
}

async function openExisting(p: string): Promise<Closable> {
  if (!(await stat(p).catch(() => null))?.isFile()) throw new ModelFormatError(p, 'tokenizer file not found; check the --tokenizer path', 'tokenizer');
  return fileSource(p);
}
