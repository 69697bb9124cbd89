/** Opens a model package directory as an engine in Node (the directory store holds its parent folder). */
import path from 'node:path';
import { createEngine, type Engine, type EngineOptions } from '../engine.ts';
import { createNodeGpu, type NodeAdapterName } from '../gpu/node.ts';
import { createFsStore } from '../storage/fs-store.ts';

export async function openPackageDir(
  dir: string,
  options: Omit<EngineOptions, 'model' | 'store' | 'gpu'> & { adapter?: NodeAdapterName } = {},
): Promise<Engine> {
  const abs = path.resolve(dir);
  const gpu = await createNodeGpu(options.adapter ?? (process.env.LLAMA_WEBGPU_ADAPTER as NodeAdapterName) ?? 'default');
  return createEngine({ ...options, model: path.basename(abs), store: createFsStore(path.dirname(abs)), gpu });
}
