/**
 * WebGPU in Node through Dawn (the `webgpu` npm package) on a software or hardware Vulkan driver.
 *
 * Known software drivers: Mesa lavapipe ("llvmpipe", with shader-f16) and SwiftShader (shipped with Chromium,
 * no shader-f16). The Vulkan loader finds lavapipe and hardware drivers in its standard folders by itself; when
 * VK_ICD_FILENAMES and VK_DRIVER_FILES (which replace that search) are unset, Chromium's SwiftShader is added to
 * it through VK_ADD_DRIVER_FILES (Vulkan loader 1.3.234 or later).
 */
import { existsSync } from 'node:fs';
import { WebGpuUnavailableError } from '../errors.ts';
import { Gpu, summarizeAdapter, type AdapterSummary, type GpuOptions } from './device.ts';

export type NodeAdapterName = 'llvmpipe' | 'swiftshader' | 'default';

/** Software driver manifests outside the loader's standard search folders. */
const EXTRA_ICDS = ['/usr/lib/chromium/vk_swiftshader_icd.json'];

type DawnModule = { create(options: string[]): GPU; globals: Record<string, unknown> };
let dawn: DawnModule | undefined;
const instances = new Map<NodeAdapterName, GPU>();

async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES) {
    const added = (process.env.VK_ADD_DRIVER_FILES ?? '').split(':').filter(Boolean);
    const found = EXTRA_ICDS.filter((f) => existsSync(f) && !added.includes(f));
    if (found.length > 0) process.env.VK_ADD_DRIVER_FILES = [...added, ...found].join(':');
  }
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (cause) {
    throw new WebGpuUnavailableError(
      'The `webgpu` npm package (Dawn for Node), an optional peer dependency of llama-webgpu, could not be loaded. ' +
        'Run `npm install webgpu` beside llama-webgpu to run models in Node.',
      { cause },
    );
  }
  // GPUBufferUsage, GPUMapMode and friends are globals in browsers; Dawn exports them.
  for (const [k, v] of Object.entries(dawn.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return dawn;
}

/**
 * The adapter one Dawn instance picks. 'llvmpipe' and 'swiftshader' return that driver's adapter or null when it is
 * not installed; 'default' returns Dawn's own pick (a hardware GPU when there is one, else whichever software
 * adapter Dawn ranks first). chooseNodeAdapter ranks the candidates itself.
 */
export async function nodeAdapter(name: NodeAdapterName = 'default'): Promise<GPUAdapter | null> {
  const { create } = await loadDawn();
  const options = dawnOptions(name);
  // Dawn tears the instance down when the GPU object is garbage-collected, taking its adapters and devices
  // with it, so every instance is kept for the life of the process.
  let gpu = instances.get(name);
  if (!gpu) {
    gpu = create(options);
    instances.set(name, gpu);
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return null;
  if (name !== 'default' && adapterKind(summarizeAdapter(adapter)) !== name) {
    return null; // Dawn fell back to another adapter: the one asked for is not installed.
  }
  return adapter;
}

/**
 * The options of the Dawn instance for `name`: the adapter filter, and the Dawn toggles listed (comma-separated) in
 * LLAMA_WEBGPU_DAWN_TOGGLES, enabled on every adapter and device. Dawn withholds shader-f16 on NVIDIA's Vulkan driver
 * unless `vulkan_enable_f16_on_nvidia` is among them (PhysicalDeviceVk.cpp, pending f16 conformance failures there).
 */
export function dawnOptions(name: NodeAdapterName, toggles: string | undefined = process.env.LLAMA_WEBGPU_DAWN_TOGGLES): string[] {
  const options = name === 'llvmpipe' ? ['adapter=llvmpipe'] : name === 'swiftshader' ? ['adapter=SwiftShader'] : [];
  const list = (toggles ?? '').split(',').map((t) => t.trim()).filter(Boolean);
  if (list.length > 0) options.push(`enable-dawn-features=${list.join(',')}`);
  return options;
}

/** What an adapter is, for ranking: a hardware GPU, one of the two known software drivers, or another CPU driver. */
export type AdapterKind = 'hardware' | 'llvmpipe' | 'swiftshader' | 'software';

type AdapterFacts = Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description' | 'isFallbackAdapter'>;

export function adapterKind(s: AdapterFacts): AdapterKind {
  const text = `${s.vendor} ${s.architecture} ${s.device} ${s.description}`.toLowerCase();
  if (text.includes('llvmpipe') || text.includes('lavapipe')) return 'llvmpipe';
  if (text.includes('swiftshader')) return 'swiftshader';
  // Dawn marks CPU (software) Vulkan devices as fallback adapters.
  if (s.isFallbackAdapter || /\bcpu\b|software rasterizer/.test(text)) return 'software';
  return 'hardware';
}

/** Rank of each kind for the automatic choice, best first: lavapipe runs this engine's kernels ~20x faster than SwiftShader. */
const KIND_RANK: AdapterKind[] = ['hardware', 'llvmpipe', 'swiftshader', 'software'];

/**
 * The automatic choice among the adapters found: a hardware GPU, else Mesa lavapipe, else SwiftShader, else any
 * other software adapter; with the reason in words. Undefined when nothing was found. Ties keep the first.
 */
export function chooseAdapter(found: AdapterFacts[]): { index: number; kind: AdapterKind; reason: string } | undefined {
  let best = -1;
  for (let i = 0; i < found.length; i++) {
    if (best < 0 || KIND_RANK.indexOf(adapterKind(found[i])) < KIND_RANK.indexOf(adapterKind(found[best]))) best = i;
  }
  if (best < 0) return undefined;
  const kind = adapterKind(found[best]);
  const kinds = new Set(found.map(adapterKind));
  const reason =
    kind === 'hardware'
      ? 'hardware GPU preferred over software adapters'
      : kind === 'llvmpipe'
        ? `no hardware GPU found; lavapipe preferred${kinds.has('swiftshader') ? ' over SwiftShader' : ''}`
        : kind === 'swiftshader'
          ? 'no hardware GPU or Mesa lavapipe found (scripts/setup-system.sh installs lavapipe, ~20x faster)'
          : 'no hardware GPU, lavapipe or SwiftShader found; using the software adapter Dawn offers';
  return { index: best, kind, reason };
}

/** Where an adapter request came from: a command-line option, the environment, or neither (automatic). */
export type AdapterRequestSource = '--adapter' | 'LLAMA_WEBGPU_ADAPTER' | 'automatic';

/** The adapter asked for by `option` (a CLI --adapter value) or else LLAMA_WEBGPU_ADAPTER; 'default' when neither. */
export function resolveAdapterRequest(
  option: string | undefined,
  env: string | undefined = process.env.LLAMA_WEBGPU_ADAPTER,
): { name: NodeAdapterName; source: AdapterRequestSource } {
  const [value, source] = option !== undefined ? [option, '--adapter' as const] : env ? [env, 'LLAMA_WEBGPU_ADAPTER' as const] : ['default', 'automatic' as const];
  if (!(NODE_ADAPTER_NAMES as readonly string[]).includes(value)) {
    throw new WebGpuUnavailableError(`Unknown adapter "${value}" (from ${source}). Use one of: ${NODE_ADAPTER_NAMES.join(', ')}.`);
  }
  return { name: value as NodeAdapterName, source: value === 'default' ? 'automatic' : source };
}

export const NODE_ADAPTER_NAMES = ['default', 'llvmpipe', 'swiftshader'] as const;

/** An opened adapter with the reason it was chosen. */
export interface NodeAdapterChoice {
  adapter: GPUAdapter;
  summary: AdapterSummary;
  kind: AdapterKind;
  /** "set by --adapter", "set by LLAMA_WEBGPU_ADAPTER", or the automatic choice's reason. */
  reason: string;
}

/**
 * Opens the adapter `name` names; for 'default', the best of what is installed (chooseAdapter): Dawn's own pick
 * first, and the software drivers only when that pick is not a hardware GPU. Null when none is found.
 */
export async function chooseNodeAdapter(name: NodeAdapterName, source: AdapterRequestSource = 'automatic'): Promise<NodeAdapterChoice | null> {
  if (name !== 'default') {
    const adapter = await nodeAdapter(name);
    if (!adapter) return null;
    return { adapter, summary: summarizeAdapter(adapter), kind: name, reason: `set by ${source === 'automatic' ? 'the caller' : source}` };
  }
  const candidates: GPUAdapter[] = [];
  const dawnPick = await nodeAdapter('default');
  if (dawnPick) candidates.push(dawnPick);
  if (!dawnPick || adapterKind(summarizeAdapter(dawnPick)) !== 'hardware') {
    for (const software of ['llvmpipe', 'swiftshader'] as const) {
      const adapter = await nodeAdapter(software);
      if (adapter) candidates.push(adapter);
    }
  }
  const summaries = candidates.map(summarizeAdapter);
  const choice = chooseAdapter(summaries);
  if (!choice) return null;
  return { adapter: candidates[choice.index], summary: summaries[choice.index], kind: choice.kind, reason: choice.reason };
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
 * GPU will hold) picks lavapipe's thread count (lavapipeThreads); it takes effect only when this call opens the
 * process's first Dawn instance, since Mesa reads it once.
 */
export async function createNodeGpu(name: NodeAdapterName = 'default', options?: GpuOptions & { modelBytes?: number }): Promise<Gpu> {
  return (await openNodeGpu(name, options)).gpu;
}

/** createNodeGpu, also saying which adapter it opened and why (for `bench` and `generate`). */
export async function openNodeGpu(
  name: NodeAdapterName = 'default',
  options?: GpuOptions & { modelBytes?: number; source?: AdapterRequestSource },
): Promise<{ gpu: Gpu; choice: NodeAdapterChoice; errors: UncapturedErrors }> {
  if (instances.size === 0) {
    const threads = lavapipeThreads(options?.modelBytes);
    if (threads !== undefined) process.env.LP_NUM_THREADS = String(threads);
  }
  const choice = await chooseNodeAdapter(name, options?.source);
  if (!choice) {
    throw new WebGpuUnavailableError(
      `No WebGPU adapter "${name}" in Node. Install a Vulkan driver: scripts/setup-system.sh installs Mesa lavapipe ` +
        'and SwiftShader (via chromium), or set VK_ICD_FILENAMES to your driver\'s ICD file.',
    );
  }
  // Dawn in Node resolves mapAsync and onSubmittedWorkDone by polling from setImmediate.
  const { modelBytes: _bytes, source: _source, ...gpuOptions } = options ?? {};
  const gpu = await Gpu.create(choice.adapter, { busyWaits: true, ...gpuOptions });
  // Dawn in Node prints errors nobody captured to stdout, where they would corrupt a command's JSON output.
  const errors: UncapturedErrors = { count: 0, first: undefined };
  gpu.device.onuncapturederror = (e) => {
    errors.count++;
    errors.first ??= e.error.message;
    console.error(`WebGPU error on ${choice.summary.description || choice.summary.device}: ${e.error.message}`);
  };
  return { gpu, choice, errors };
}

/** The WebGPU errors raised outside any error scope on a device from openNodeGpu (they go to stderr). */
export interface UncapturedErrors {
  count: number;
  first: string | undefined;
}
