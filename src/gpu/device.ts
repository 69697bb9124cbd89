import { GpuLimitError, LlamaWebGpuError } from '../errors.ts';
import { shaderSource } from './shaders.ts';
import { tuningFor, type Tuning } from './tuning.ts';

/** Adapter facts worth printing in logs and test output. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  f16: boolean;
  subgroups: boolean;
  /** Smallest and largest subgroup size (0 when the adapter does not say). */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxStorageBuffersPerShaderStage: number;
}

export interface GpuOptions {
  /** Use shader-f16 when the adapter has it (default true). False forces the f32 paths. */
  f16?: boolean;
  /**
   * True when the WebGPU implementation polls on a busy loop while a mapAsync or onSubmittedWorkDone is pending
   * (Dawn in Node drives its events from setImmediate), so waiting keeps a CPU core busy; see Gpu.busyWaits.
   */
  busyWaits?: boolean;
  label?: string;
}

export function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const l = adapter.limits;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    f16: adapter.features.has('shader-f16'),
    subgroups: adapter.features.has('subgroups'),
    subgroupMinSize: info.subgroupMinSize ?? 0,
    subgroupMaxSize: info.subgroupMaxSize ?? 0,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
  };
}

/** The limits we ask for: the adapter's best values for everything the kernels and weights use. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

/**
 * A WebGPU device plus the things every op needs: the f16 decision, a pipeline cache and buffer helpers.
 * Pipelines are built once per (shader, constants) pair and shared by every op that uses them.
 */
export class Gpu {
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
  /** True when the adapter has shader-f16 and it was not turned off: the KV cache is then half precision. */
  readonly f16: boolean;
  /** True when shaders may `enable subgroups;` (the adapter has the feature; it is always requested). */
  readonly subgroups: boolean;
  /**
   * True when a pending map keeps a CPU core busy (GpuOptions.busyWaits). The generation loop then asks for a
   * step's readback only when the step should be nearly done, which leaves the core to a software GPU's threads.
   */
  readonly busyWaits: boolean;
  readonly summary: AdapterSummary;
  /** The kernels and layouts the ops choose on this adapter (src/gpu/tuning.ts). */
  readonly tuning: Tuning;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private placeholder: GPUBuffer | undefined;
  private readonly sharedBuffers = new Map<string, GPUBuffer>();
  private readonly modules = new Map<string, GPUShaderModule>();

  private constructor(adapter: GPUAdapter, device: GPUDevice, f16: boolean, busyWaits: boolean) {
    this.adapter = adapter;
    this.device = device;
    this.f16 = f16;
    this.busyWaits = busyWaits;
    this.subgroups = device.features.has('subgroups');
    this.summary = summarizeAdapter(adapter);
    this.tuning = tuningFor(this.summary, device.features, device.limits);
  }

  static async create(adapter: GPUAdapter, options: GpuOptions = {}): Promise<Gpu> {
    const f16 = (options.f16 ?? true) && adapter.features.has('shader-f16');
    const requiredFeatures: GPUFeatureName[] = [];
    if (f16) requiredFeatures.push('shader-f16');
    if (adapter.features.has('subgroups')) requiredFeatures.push('subgroups');
    const requiredLimits: Record<string, number> = {};
    for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
    const device = await adapter.requestDevice({ label: options.label ?? 'llama-webgpu', requiredFeatures, requiredLimits });
    return new Gpu(adapter, device, f16, options.busyWaits ?? false);
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** Throws GpuLimitError naming the limit when the device cannot provide `needed`. */
  requireLimit(name: keyof typeof WANTED_LIMITS_SHAPE, needed: number, what: string): void {
    const have = this.device.limits[name];
    if (have < needed) {
      throw new GpuLimitError(
        `${what} needs ${name} >= ${needed}, but this GPU (${this.summary.description || this.summary.device}) allows ${have}. ` +
          'Use a smaller model, a smaller context, or a GPU with higher limits.',
      );
    }
  }

  /**
   * A compute pipeline for shaders/<shader>.wgsl, entry point `main`, built once per distinct constants.
   * `label` names it in validation errors ("pipeline.rmsnorm").
   */
  pipeline(shader: string, constants: Record<string, number> = {}): GPUComputePipeline {
    const key = `${shader}|${Object.entries(constants)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}`;
    let pipeline = this.pipelines.get(key);
    if (pipeline) return pipeline;
    let module = this.modules.get(shader);
    if (!module) {
      module = this.device.createShaderModule({ label: `shader.${shader}`, code: shaderSource(shader) });
      this.modules.set(shader, module);
    }
    pipeline = this.device.createComputePipeline({
      label: `pipeline.${shader}`,
      layout: 'auto',
      compute: { module, entryPoint: 'main', constants },
    });
    this.pipelines.set(key, pipeline);
    return pipeline;
  }

  /** A bind group for binding slots 0..n-1 of `pipeline`, in order. */
  bindGroup(label: string, pipeline: GPUComputePipeline, resources: (GPUBuffer | GPUBufferBinding)[]): GPUBindGroup {
    return this.device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: resources.map((r, binding) => ({ binding, resource: 'buffer' in r ? r : { buffer: r } })),
    });
  }

  /** A storage buffer (usable as copy source and destination), optionally filled with `data`. Size is rounded up to 4. */
  storage(label: string, sizeOrData: number | ArrayBufferView, extraUsage = 0): GPUBuffer {
    const size = typeof sizeOrData === 'number' ? sizeOrData : sizeOrData.byteLength;
    const buffer = this.device.createBuffer({
      label,
      size: Math.max(4, align(size, 4)),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | extraUsage,
    });
    if (typeof sizeOrData !== 'number') this.write(buffer, sizeOrData);
    return buffer;
  }

  /** A small storage buffer to bind where a kernel declares a binding that this use of it never touches. */
  get unusedStorage(): GPUBuffer {
    return (this.placeholder ??= this.storage('unused', 16));
  }

  /**
   * A storage buffer shared by every op on this device that asks for the same label and size: scratch whose
   * contents live only within one op's dispatches, when ops run one after another (a 70B model's 80 attention
   * layers hold one pair of partial-result buffers, not 80).
   */
  sharedScratch(label: string, bytes: number): GPUBuffer {
    const key = `${label}.${bytes}`;
    let b = this.sharedBuffers.get(key);
    if (!b) this.sharedBuffers.set(key, (b = this.storage(key, bytes)));
    return b;
  }

  /** A uniform buffer holding `data` (rounded up to 16 bytes). Written again with `write` when it changes. */
  uniform(label: string, data: ArrayBufferView): GPUBuffer {
    const buffer = this.device.createBuffer({
      label,
      size: align(Math.max(data.byteLength, 16), 16),
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.write(buffer, data);
    return buffer;
  }

  /** queue.writeBuffer for any typed array, padding the tail to a multiple of 4 bytes. */
  write(buffer: GPUBuffer, data: ArrayBufferView, bufferOffset = 0): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(buffer, bufferOffset, bytes);
    } else {
      const padded = new Uint8Array(align(bytes.byteLength, 4));
      padded.set(bytes);
      this.device.queue.writeBuffer(buffer, bufferOffset, padded);
    }
  }

  /** Copies `size` bytes of `buffer` back to the CPU. For tests and tools; the decode loop never blocks on this. */
  async read(buffer: GPUBuffer, offset = 0, size = buffer.size - offset): Promise<ArrayBuffer> {
    const staging = this.device.createBuffer({
      label: `readback.${buffer.label}`,
      size: align(size, 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = this.device.createCommandEncoder({ label: 'readback' });
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, align(size, 4));
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0, size);
    staging.unmap();
    staging.destroy();
    return out;
  }

  async readF32(buffer: GPUBuffer, offset = 0, count?: number): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, offset, count === undefined ? undefined : count * 4));
  }

  /**
   * Runs `record` in one compute pass, submits, and waits for the GPU. For tests and tools; `expectMs`, a lower
   * bound on the GPU time, lets a busy-waiting implementation (busyWaits) sleep through it instead of polling.
   */
  async run(label: string, record: (pass: GPUComputePassEncoder) => void, options: { expectMs?: number } = {}): Promise<void> {
    const encoder = this.device.createCommandEncoder({ label });
    const pass = encoder.beginComputePass({ label });
    record(pass);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
    // Where waiting busy-polls, sleep through most of the expected time first (benchmarks pass it).
    if (this.busyWaits && options.expectMs && options.expectMs >= 1) await new Promise((resolve) => setTimeout(resolve, options.expectMs));
    await this.device.queue.onSubmittedWorkDone();
  }

  /** Surfaces the first validation error raised inside `fn` as a thrown LlamaWebGpuError. */
  async checked<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    this.device.pushErrorScope('validation');
    const result = await fn();
    const error = await this.device.popErrorScope();
    if (error) throw new LlamaWebGpuError('GPU_VALIDATION', `${what}: ${error.message}`);
    return result;
  }

  destroy(): void {
    this.device.destroy();
  }
}

const WANTED_LIMITS_SHAPE = Object.fromEntries(WANTED_LIMITS.map((k) => [k, 0])) as Record<(typeof WANTED_LIMITS)[number], number>;

export function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
