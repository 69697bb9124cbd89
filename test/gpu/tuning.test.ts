// The adapter-dependent choices of src/gpu/tuning.ts, pinned for adapter facts as Dawn reports them on real drivers
// (lavapipe and SwiftShader as installed here, an H100), and checked against the test adapters' own Gpu.tuning.
// Their effect on speed is measured with `bench` and `bench-kernels` (README).
import { describe, expect, it } from 'vitest';
import { tuningFor, type Tuning, type TuningFacts, type TuningLimits } from '../../src/gpu/tuning.ts';
import { testGpus } from '../helpers/gpu.ts';

const LAVAPIPE: TuningFacts = {
  device: 'llvmpipe-llvm-15-0-6-256-bits-',
  description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1',
  isFallbackAdapter: true,
  subgroupMinSize: 8,
  subgroupMaxSize: 8,
};
const SWIFTSHADER: TuningFacts = {
  device: 'swiftshader-device-subzero-',
  description: 'SwiftShader driver 5.0.0',
  isFallbackAdapter: true,
  subgroupMinSize: 4,
  subgroupMaxSize: 4,
};
const H100: TuningFacts = { device: '', description: 'NVIDIA H100 80GB HBM3', isFallbackAdapter: false, subgroupMinSize: 32, subgroupMaxSize: 32 };

const SUBGROUPS = new Set(['subgroups', 'shader-f16']);
const limits = (n: number): TuningLimits => ({ maxComputeInvocationsPerWorkgroup: n, maxComputeWorkgroupSizeX: n });

/** The choices each adapter gets today (with its own limits: 1024 invocations on lavapipe and the H100, 256 on SwiftShader). */
const EXPECTED: Record<'llvmpipe' | 'swiftshader' | 'h100', Tuning> = {
  llvmpipe: {
    matvecWorkgroup: 16,
    attention: { keysPerChunk: 32, targetWorkgroups: 8 },
    samplerWorkgroup: 256,
    lanesRun: true,
    lanes: true,
    prefillThroughMatvec: true,
  },
  swiftshader: {
    matvecWorkgroup: 16,
    attention: { keysPerChunk: 32, targetWorkgroups: 8 },
    samplerWorkgroup: 256,
    lanesRun: false,
    lanes: false,
    prefillThroughMatvec: false,
  },
  h100: {
    matvecWorkgroup: 64,
    attention: { keysPerChunk: 128, targetWorkgroups: 512 },
    samplerWorkgroup: 1024,
    lanesRun: false,
    lanes: false,
    prefillThroughMatvec: false,
  },
};

describe('tuningFor', () => {
  it('gives lavapipe the CPU layouts, the lanes kernels and per-token matvec prefill', () => {
    expect(tuningFor(LAVAPIPE, SUBGROUPS, limits(1024))).toEqual(EXPECTED.llvmpipe);
  });

  it('gives SwiftShader the CPU layouts and the tiled prefill (its subgroups are 4 lanes)', () => {
    expect(tuningFor(SWIFTSHADER, SUBGROUPS, limits(256))).toEqual(EXPECTED.swiftshader);
  });

  it('gives a hardware GPU the wide layouts and the tiled prefill', () => {
    expect(tuningFor(H100, SUBGROUPS, limits(1024))).toEqual(EXPECTED.h100);
  });

  it('runs the lanes kernels only where the device enabled subgroups', () => {
    const t = tuningFor(LAVAPIPE, new Set(['shader-f16']), limits(1024));
    expect([t.lanesRun, t.lanes]).toEqual([false, false]);
    expect(t.prefillThroughMatvec).toBe(true);
  });

  it('keeps 8-lane subgroups on a GPU available to tests but not the default', () => {
    const t = tuningFor({ ...H100, subgroupMinSize: 8, subgroupMaxSize: 8 }, SUBGROUPS, limits(1024));
    expect([t.lanesRun, t.lanes]).toEqual([true, false]);
  });

  it('fits the sampler workgroup to the limits as a power of two', () => {
    expect(tuningFor(H100, SUBGROUPS, limits(768)).samplerWorkgroup).toBe(512);
    expect(tuningFor(H100, SUBGROUPS, { maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 256 }).samplerWorkgroup).toBe(256);
    expect(tuningFor(LAVAPIPE, SUBGROUPS, limits(128)).samplerWorkgroup).toBe(128);
  });
});

describe.each((await testGpus()).map((g) => [g.name, g] as const))('Gpu.tuning on %s', (name, { gpu }) => {
  it('is the pinned tuning for this adapter', () => {
    expect(gpu.tuning).toEqual(EXPECTED[name as 'llvmpipe' | 'swiftshader']);
  });
});
