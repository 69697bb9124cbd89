/**
 * Real WebGPU adapters for tests: Mesa lavapipe (shader-f16, so the f16 kernel paths run) and SwiftShader
 * (no shader-f16, so the f32 paths run). In CI both must exist; a missing one fails the run. Outside CI a
 * missing adapter skips its tests with a loud warning.
 *
 * LLAMA_WEBGPU_TEST_ADAPTERS=llvmpipe (comma list) restricts the adapters while developing.
 */
import { Gpu } from '../../src/gpu/device.ts';
import { nodeAdapter, type NodeAdapterName } from '../../src/gpu/node.ts';
import { closeTo, describeMismatch, worstMismatch } from '../../src/reference/compare.ts';

export const ALL_TEST_ADAPTERS: NodeAdapterName[] = ['llvmpipe', 'swiftshader'];

export interface TestGpu {
  name: NodeAdapterName;
  gpu: Gpu;
}

export function wantedAdapters(): NodeAdapterName[] {
  const env = process.env.LLAMA_WEBGPU_TEST_ADAPTERS;
  if (!env) return ALL_TEST_ADAPTERS;
  return env.split(',').map((s) => s.trim()) as NodeAdapterName[];
}

const cache = new Map<NodeAdapterName, Promise<Gpu | null>>();

async function openGpu(name: NodeAdapterName): Promise<Gpu | null> {
  const adapter = await nodeAdapter(name);
  if (!adapter) {
    const msg = `WebGPU adapter "${name}" not found (run scripts/setup-system.sh)`;
    if (process.env.CI) throw new Error(`${msg}; in CI this is a failure, not a skip.`);
    console.warn(`\n!!!!!!!! SKIPPING GPU TESTS ON ${name}: ${msg} !!!!!!!!\n`);
    return null;
  }
  // Dawn in Node, like createNodeGpu: waits busy-poll, so generation paces its readbacks (Gpu.busyWaits).
  const gpu = await Gpu.create(adapter, { label: `test.${name}`, busyWaits: true });
  gpu.device.onuncapturederror = (e) => {
    throw new Error(`uncaptured WebGPU error on ${name}: ${e.error.message}`);
  };
  return gpu;
}

/** The test GPUs available in this process, one device per adapter, shared by a test file. */
export async function testGpus(): Promise<TestGpu[]> {
  const out: TestGpu[] = [];
  for (const name of wantedAdapters()) {
    if (!cache.has(name)) cache.set(name, openGpu(name));
    const gpu = await cache.get(name)!;
    if (gpu) out.push({ name, gpu });
  }
  return out;
}

export { randomArray, rng } from './random.ts';

/** Largest |a-b| / (atol + rtol*|b|) style check; returns the worst absolute error and its index. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; at: number } {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let max = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) {
      max = d;
      at = i;
    }
  }
  return { max, at };
}

/**
 * Asserts every element satisfies |got - want| <= atol + rtol * |want|, reporting the worst element.
 */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = 0, what = 'values'): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length}, expected ${want.length}`);
  const m = worstMismatch(got, want, closeTo({ atol, rtol }, want));
  if (m) throw new Error(`${describeMismatch(what, m)}; tolerance ${atol} + ${rtol}*|x|`);
}
