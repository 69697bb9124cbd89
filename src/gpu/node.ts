/**
 * WebGPU in Node through Dawn (the `webgpu` npm package) on a software or hardware Vulkan driver.
 *
 * Known software drivers: Mesa lavapipe ("llvmpipe", with shader-f16) and SwiftShader (shipped with Chromium,
 * no shader-f16). When VK_ICD_FILENAMES is unset we point the Vulkan loader at whichever of them is installed,
 * alongside any hardware driver the loader finds by itself.
 */
import { existsSync } from 'node:fs';
import { WebGpuUnavailableError } from '../errors.ts';
import { Gpu, type GpuOptions } from './device.ts';

export type NodeAdapterName = 'llvmpipe' | 'swiftshader' | 'default';

const SOFTWARE_ICDS = [
  '/usr/share/vulkan/icd.d/lvp_icd.json',
  '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json',
  '/usr/share/vulkan/icd.d/lvp_icd.aarch64.json',
  '/usr/lib/chromium/vk_swiftshader_icd.json',
];

type DawnModule = { create(options: string[]): GPU; globals: Record<string, unknown> };
let dawn: DawnModule | undefined;
const instances = new Map<NodeAdapterName, GPU>();

async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES) {
    const found = SOFTWARE_ICDS.filter((f) => existsSync(f));
    if (found.length > 0) process.env.VK_ICD_FILENAMES = found.join(':');
  }
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (cause) {
    throw new WebGpuUnavailableError('The `webgpu` npm package (Dawn for Node) could not be loaded. Run `npm install`.', { cause });
  }
  // GPUBufferUsage, GPUMapMode and friends are globals in browsers; Dawn exports them.
  for (const [k, v] of Object.entries(dawn.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return dawn;
}

/** A Node GPU adapter by name. 'default' lets Dawn choose (a hardware GPU when there is one). */
export async function nodeAdapter(name: NodeAdapterName = 'default'): Promise<GPUAdapter | null> {
  const { create } = await loadDawn();
  const options = name === 'llvmpipe' ? ['adapter=llvmpipe'] : name === 'swiftshader' ? ['adapter=SwiftShader'] : [];
  // Dawn tears the instance down when the GPU object is garbage-collected, taking its adapters and devices
  // with it, so every instance is kept for the life of the process.
  let gpu = instances.get(name);
  if (!gpu) {
    gpu = create(options);
    instances.set(name, gpu);
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return null;
  if (name !== 'default' && !`${adapter.info.device} ${adapter.info.description} ${adapter.info.architecture}`.toLowerCase().includes(name)) {
    return null; // Dawn fell back to another adapter: the one asked for is not installed.
  }
  return adapter;
}

/**
 * Below this many bytes of weights, a model counts as small for lavapipeThreads: a round figure between the
 * measured sizes on either side of the crossover (1 MB, 619 MB), not a measured crossover.
 */
export const SMALL_MODEL_BYTES = 64 << 20;

/**
 * The compute thread count for Mesa lavapipe (its LP_NUM_THREADS; 0 runs each dispatch on the driver's queue
 * thread), unless the environment already sets one. Lavapipe hands every dispatch to a pool of worker threads and
 * waits for them; for the small dispatches of a small model that hand-off costs more than the work (stories260K
 * decode on 2 vCPUs: 475-610 tok/s with 0 threads, 125-225 with 2), while large models gain from the threads
 * (TinyLlama-shaped q4 on 2 vCPUs: prefill 10.0-10.2 tok/s with 2 threads, 8.7-8.9 with 0; decode 3.7-4.0 against
 * 3.3-3.4). Mesa's default (one thread per CPU) stands for models of SMALL_MODEL_BYTES or more, or of unknown size.
 */
export function lavapipeThreads(modelBytes: number | undefined): number | undefined {
  if (process.env.LP_NUM_THREADS !== undefined) return undefined;
  return modelBytes !== undefined && modelBytes < SMALL_MODEL_BYTES ? 0 : undefined;
}

/**
 * A ready Gpu in Node, or WebGpuUnavailableError saying how to install a driver. `modelBytes` (the weights the
 * GPU will hold) picks lavapipe's thread count (lavapipeThreads); it takes effect when the process first opens the
 * adapter, since Mesa reads it once.
 */
export async function createNodeGpu(name: NodeAdapterName = 'default', options?: GpuOptions & { modelBytes?: number }): Promise<Gpu> {
  if (!instances.has(name)) {
    const threads = lavapipeThreads(options?.modelBytes);
    if (threads !== undefined) process.env.LP_NUM_THREADS = String(threads);
  }
  const adapter = await nodeAdapter(name);
  if (!adapter) {
    throw new WebGpuUnavailableError(
      `No WebGPU adapter "${name}" in Node. Install a Vulkan driver: scripts/setup-system.sh installs Mesa lavapipe ` +
        'and SwiftShader (via chromium), or set VK_ICD_FILENAMES to your driver\'s ICD file.',
    );
  }
  // Dawn in Node resolves mapAsync and onSubmittedWorkDone by polling from setImmediate.
  return Gpu.create(adapter, { busyWaits: true, ...options });
}
