/**
 * Every choice of kernel or layout that depends on the adapter, made once per device (Gpu.tuning) from the
 * adapter's facts, its features and its limits. The ops read this record and nothing else about the adapter, so
 * which kernels run where is decided, and can be checked (test/gpu/tuning.test.ts), in this one place.
 *
 * Two classes of adapter differ here: CPU adapters (isFallbackAdapter: Mesa lavapipe, SwiftShader), which run each
 * workgroup on one core's SIMD lanes, and GPUs, which want many wide workgroups in flight.
 */
import type { AdapterSummary } from './device.ts';

/**
 * How shaders/attention.wgsl is laid out: keys per chunk (its workgroup size, a power of two >= headDim / 4) and
 * the number of pass-1 workgroups worth keeping busy (the keys are split until there are about this many).
 */
export interface AttentionTuning {
  keysPerChunk: number;
  targetWorkgroups: number;
}

export interface Tuning {
  /** Threads per workgroup of shaders/matvec_*.wgsl. */
  matvecWorkgroup: number;
  /** The flash-decoding layout of attention (Attention). */
  attention: AttentionTuning;
  /** Threads of the sampler's single workgroup: a power of two (its tree reductions need one) within the limits. */
  samplerWorkgroup: number;
  /** The lanes kernels (shaders/matmul_lanes_*.wgsl) can run: their workgroup is one subgroup of exactly 8 lanes. */
  lanesRun: boolean;
  /** The lanes kernels are also the default for the weights they fit (lanesKernelFits), in decode and prefill. */
  lanes: boolean;
  /** Prefill of a weight the lanes kernel does not take runs the matvec kernels once per token, not the tiled matmul. */
  prefillThroughMatvec: boolean;
}

/** The adapter facts the choices read (AdapterSummary, Gpu.summary). */
export type TuningFacts = Pick<AdapterSummary, 'device' | 'description' | 'isFallbackAdapter' | 'subgroupMinSize' | 'subgroupMaxSize'>;
/** The device limits the choices read. */
export type TuningLimits = Pick<GPUSupportedLimits, 'maxComputeInvocationsPerWorkgroup' | 'maxComputeWorkgroupSizeX'>;

/** The tuning for an adapter with `features` enabled on its device (the device's `features`) and these limits. */
export function tuningFor(summary: TuningFacts, features: { has(name: string): boolean }, limits: TuningLimits): Tuning {
  const cpu = summary.isFallbackAdapter;
  const lanesRun = features.has('subgroups') && summary.subgroupMinSize === 8 && summary.subgroupMaxSize === 8;
  // The sampler's passes over the vocabulary are latency-bound: on an H100, 1024 threads took greedy sampling of
  // 32000 logits from 37 us to 17 us and top-k + top-p from 650 us to 300 us. A CPU adapter runs the workgroup's
  // threads on one core, where threads past 256 only add barrier cost.
  const samplerWanted = Math.min(cpu ? 256 : 1024, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  return {
    // CPU adapters: 16 threads that each take more of the row measured ~1.5x the bytes per CPU-second of 64 (q4 at
    // 7B shapes on lavapipe); GPUs want 64 to keep their SIMD units full.
    matvecWorkgroup: cpu ? 16 : 64,
    // GPUs: on an H100, 7B decode at position 4095 took 97 us with 128 keys per chunk, 145 us with 64 and 107 us with
    // 256, and hundreds of workgroups fill its SMs. CPU adapters: a few narrow workgroups avoid paying barriers and
    // idle lanes many times over (stories260K decode at position 100 on lavapipe: 507 us per layer with the GPU layout).
    attention: cpu ? { keysPerChunk: 32, targetWorkgroups: 8 } : { keysPerChunk: 128, targetWorkgroups: 512 },
    samplerWorkgroup: 2 ** Math.floor(Math.log2(samplerWanted)),
    lanesRun,
    // On lavapipe the lanes kernel takes about 0.6x the time of matvec_q4 for one token and a quarter of it per token
    // for 128-token prefill (q4 4096 x 4096: 4.3-6.3 ms against 7.9 ms; 200-250 ms against 798 ms; bench-kernels).
    lanes: lanesRun && cpu,
    // Lavapipe: per-token matvec took 1.5x less CPU time than the tiled kernel (q4 4096 x 4096, 128 tokens: 1.7-2.0 s
    // against 3.0 s), its workgroup-memory reads being gathered lane by lane. SwiftShader goes the other way (7.9 s
    // per token against 4.0 s tiled), and GPUs reuse each staged weight tile of the tiled kernel across 32 tokens.
    prefillThroughMatvec: /llvmpipe/i.test(`${summary.device} ${summary.description}`),
  };
}
