/**
 * `llama-webgpu convert <url> <out-dir>`: importFromUrl into the directory store whose root is <out-dir>'s parent,
 * under <out-dir>'s name, so the package ends up exactly where a local conversion would put it. The checkpoint
 * streams through HTTP Range requests; an interrupted run continues where it stopped when run again.
 */
import path from 'node:path';
import { createFsStore } from '../storage/fs-store.ts';
import { importFromUrl, type ImportOptions } from '../storage/import.ts';
import { Progress } from './progress.ts';

export async function convertUrl(url: string, out: string, options: Pick<ImportOptions, 'quant' | 'tokenizer' | 'shardBytes' | 'name'>): Promise<number> {
  const started = performance.now();
  const dir = path.resolve(out);
  const progress = new Progress();
  const model = await importFromUrl(createFsStore(path.dirname(dir)), url, {
    ...options,
    id: path.basename(dir),
    onProgress: (p) => {
      const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
      const text = `${String(pct).padStart(3)}%  ${(p.downloadedBytes / 1e6).toFixed(1)} MB downloaded  ${(p.packageBytes / 1e6).toFixed(1)} MB written  ${p.tensor ?? p.phase}`;
      progress.update(text, p.phase !== 'convert');
    },
  }).finally(() => progress.done());
  const seconds = (performance.now() - started) / 1000;
  const { manifest } = model;
  console.log(`wrote ${out}: ${manifest.tensors.length} tensors, ${manifest.shards.length} shards, ${(model.bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s`);
  return 0;
}
