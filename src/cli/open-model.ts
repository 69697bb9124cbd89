/** Opens a model package directory as an engine in Node (the directory store holds its parent folder). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createEngine, type Engine, type EngineOptions } from '../engine.ts';
import { createNodeGpu, type NodeAdapterName } from '../gpu/node.ts';
import { createFsStore } from '../storage/fs-store.ts';

export async function openPackageDir(
  dir: string,
  options: Omit<EngineOptions, 'model' | 'store' | 'gpu'> & { adapter?: NodeAdapterName } = {},
): Promise<Engine> {
  const abs = path.resolve(dir);
  const gpu = await createNodeGpu(options.adapter ?? (process.env.LLAMA_WEBGPU_ADAPTER as NodeAdapterName) ?? 'default', { modelBytes: packageBytes(abs) });
  return createEngine({ ...options, model: path.basename(abs), store: createFsStore(path.dirname(abs)), gpu });
}

/** The bytes of a package's shards from its manifest, or undefined when it cannot be read (createEngine then reports why). */
function packageBytes(dir: string): number | undefined {
  try {
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { shards?: { byteSize?: number }[] };
    return manifest.shards?.reduce((sum, s) => sum + (s.byteSize ?? 0), 0);
  } catch {
    return undefined;
  }
}
