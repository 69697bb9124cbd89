// The Node GPU policies of src/gpu/node.ts: lavapipe compute threads (lavapipeThreads) and the adapter choice, checked
// here for each case; its effect on speed is measured with `bench` (README).
import { afterEach, describe, expect, it } from 'vitest';
import { WebGpuUnavailableError } from '../../src/errors.ts';
import { adapterKind, chooseAdapter, dawnOptions, lavapipeThreads, resolveAdapterRequest, SMALL_MODEL_BYTES } from '../../src/gpu/node.ts';

describe('lavapipe thread count', () => {
  const saved = process.env.LP_NUM_THREADS;
  afterEach(() => {
    if (saved === undefined) delete process.env.LP_NUM_THREADS;
    else process.env.LP_NUM_THREADS = saved;
  });

  it('runs dispatches on the queue thread for small models only', () => {
    delete process.env.LP_NUM_THREADS;
    expect(lavapipeThreads(1 << 20)).toBe(0);
    expect(lavapipeThreads(SMALL_MODEL_BYTES - 1)).toBe(0);
    expect(lavapipeThreads(SMALL_MODEL_BYTES)).toBeUndefined();
    expect(lavapipeThreads(4e9)).toBeUndefined();
    expect(lavapipeThreads(undefined)).toBeUndefined();
  });

  it('never overrides LP_NUM_THREADS from the environment', () => {
    process.env.LP_NUM_THREADS = '3';
    expect(lavapipeThreads(1 << 20)).toBeUndefined();
  });
});

// The automatic adapter choice (chooseAdapter) over adapter facts as Dawn reports them on real drivers.
const LAVAPIPE = {
  vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-',
  description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1', isFallbackAdapter: true,
};
const SWIFTSHADER = {
  vendor: 'google', architecture: 'swiftshader', device: 'swiftshader-device-subzero-', description: 'SwiftShader driver 5.0.0', isFallbackAdapter: true,
};
const H100 = { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100 80GB HBM3', isFallbackAdapter: false };
const OTHER_CPU = { vendor: 'unknown', architecture: '', device: 'cpu rasterizer', description: 'Some CPU driver', isFallbackAdapter: true };

describe('adapter choice', () => {
  it('names each kind of adapter', () => {
    expect([LAVAPIPE, SWIFTSHADER, H100, OTHER_CPU].map(adapterKind)).toEqual(['llvmpipe', 'swiftshader', 'hardware', 'software']);
  });

  it('prefers a hardware GPU, then lavapipe, then SwiftShader, then any software adapter', () => {
    expect(chooseAdapter([SWIFTSHADER, LAVAPIPE, H100])).toMatchObject({ index: 2, kind: 'hardware' });
    expect(chooseAdapter([SWIFTSHADER, LAVAPIPE])).toEqual({
      index: 1, kind: 'llvmpipe', reason: 'no hardware GPU found; lavapipe preferred over SwiftShader',
    });
    expect(chooseAdapter([LAVAPIPE])).toMatchObject({ index: 0, kind: 'llvmpipe', reason: 'no hardware GPU found; lavapipe preferred' });
    expect(chooseAdapter([OTHER_CPU, SWIFTSHADER])).toMatchObject({ index: 1, kind: 'swiftshader' });
    expect(chooseAdapter([SWIFTSHADER])?.reason).toContain('scripts/setup-system.sh');
    expect(chooseAdapter([OTHER_CPU])).toMatchObject({ index: 0, kind: 'software' });
    expect(chooseAdapter([])).toBeUndefined();
  });

  it('keeps the first of equal adapters (Dawn lists its own pick first)', () => {
    expect(chooseAdapter([LAVAPIPE, LAVAPIPE])?.index).toBe(0);
    expect(chooseAdapter([H100, { ...H100, description: 'NVIDIA H200' }])?.index).toBe(0);
  });

  it('takes --adapter over LLAMA_WEBGPU_ADAPTER, and rejects unknown names with the valid ones', () => {
    expect(resolveAdapterRequest('swiftshader', 'llvmpipe')).toEqual({ name: 'swiftshader', source: '--adapter' });
    expect(resolveAdapterRequest(undefined, 'llvmpipe')).toEqual({ name: 'llvmpipe', source: 'LLAMA_WEBGPU_ADAPTER' });
    expect(resolveAdapterRequest(undefined, undefined)).toEqual({ name: 'default', source: 'automatic' });
    expect(resolveAdapterRequest(undefined, '')).toEqual({ name: 'default', source: 'automatic' });
    expect(resolveAdapterRequest('default', 'llvmpipe')).toEqual({ name: 'default', source: 'automatic' });
    expect(() => resolveAdapterRequest(undefined, 'lavapipe')).toThrow(WebGpuUnavailableError);
    expect(() => resolveAdapterRequest('nvidia', undefined)).toThrow(/Unknown adapter "nvidia" \(from --adapter\)\. Use one of: default, llvmpipe, swiftshader/);
  });
});

describe('Dawn instance options', () => {
  it('filter by adapter and pass LLAMA_WEBGPU_DAWN_TOGGLES as enabled Dawn features', () => {
    expect(dawnOptions('default', undefined)).toEqual([]);
    expect(dawnOptions('llvmpipe', '')).toEqual(['adapter=llvmpipe']);
    expect(dawnOptions('swiftshader', undefined)).toEqual(['adapter=SwiftShader']);
    expect(dawnOptions('default', 'vulkan_enable_f16_on_nvidia, allow_unsafe_apis')).toEqual([
      'enable-dawn-features=vulkan_enable_f16_on_nvidia,allow_unsafe_apis',
    ]);
  });
});
