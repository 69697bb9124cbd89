/** Opens a model package directory as an engine in Node (the directory store holds its parent folder). */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createEngine, type Engine, type EngineOptions } from '../engine.ts';
import { openNodeGpu, resolveAdapterRequest, type NodeAdapterChoice, type UncapturedErrors } from '../gpu/node.ts';
import { createFsStore } from '../storage/fs-store.ts';
import { CliError } from './args.ts';

/**
 * The engine, the adapter it runs on with the reason it was chosen, and the count of WebGPU errors raised outside
 * error scopes (printed to stderr as they happen). `adapter` is a --adapter value
 * (llvmpipe, swiftshader, default); without it LLAMA_WEBGPU_ADAPTER decides, and without that the automatic choice.
 */
export async function openPackageDir(
  dir: string,
  options: Omit<EngineOptions, 'model' | 'store' | 'gpu'> & { adapter?: string } = {},
): Promise<{ engine: Engine; adapter: NodeAdapterChoice; errors: UncapturedErrors }> {
  const abs = checkPackageDir(dir);
  const { adapter: option, ...engineOptions } = options;
  const request = resolveAdapterRequest(option);
  const { gpu, choice, errors } = await openNodeGpu(request.name, { modelBytes: packageBytes(abs), source: request.source });
  try {
    const engine = await createEngine({ ...engineOptions, model: path.basename(abs), store: createFsStore(path.dirname(abs)), gpu });
    return { engine, adapter: choice, errors };
  } catch (e) {
    gpu.destroy();
    throw e;
  }
}

/**
 * The absolute path of a package folder, or a CliError saying it does not exist or holds no manifest.json.
 * Checked before a GPU is opened, so a mistyped path fails at once with a plain message.
 */
export function checkPackageDir(dir: string): string {
  const abs = path.resolve(dir);
  if (!existsSync(path.join(abs, 'manifest.json'))) {
    throw new CliError(
      existsSync(abs)
        ? `${dir} is not a model package (it has no manifest.json); give the folder that \`llama-webgpu convert\` or \`synth\` wrote`
        : `${dir} does not exist; give the folder of a model package (\`llama-webgpu convert\` writes one)`,
    );
  }
  return abs;
}

/** One line naming an adapter, whether it offers shader-f16, and why it was chosen: "llvmpipe: ... [llvmpipe, shader-f16]: no hardware GPU found; ...". */
export function describeAdapter(choice: NodeAdapterChoice): string {
  const s = choice.summary;
  return `${s.description || s.device} [${choice.kind}${s.f16 ? ', shader-f16' : ', no shader-f16'}]: ${choice.reason}`;
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
