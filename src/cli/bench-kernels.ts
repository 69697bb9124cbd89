/**
 * llama-webgpu bench-kernels [--adapter llvmpipe|swiftshader|default] [--only SUBSTRING] [--seconds S] [--json]
 *
 * Time per dispatch of every kernel at Llama 2 7B decode shapes, and the effective GB/s of weight bytes it reads.
 * Each kernel is recorded many times in one compute pass and submitted once (after a warm-up submit), timed with
 * performance.now around queue.onSubmittedWorkDone, so per-submit overhead is spread over the repetitions. The
 * CPU columns give the process's CPU time per dispatch (the work itself, on software adapters).
 * Weights hold random bytes in the right encoding (finite, normal values): speed does not depend on the values.
 * The adapter is chosen as for `bench` (--adapter, else LLAMA_WEBGPU_ADAPTER, else the best installed). --json prints
 * the rows as one JSON object on stdout and the table on stderr.
 */
import { parseArgs, UsageError } from './args.ts';
import type { Gpu } from '../gpu/device.ts';
import { openNodeGpu, resolveAdapterRequest } from '../gpu/node.ts';
import { Attention } from '../gpu/ops/attention.ts';
import { Embedding } from '../gpu/ops/embedding.ts';
import { createKvCache, type KvCache } from '../gpu/ops/kv-cache.ts';
import { MatMul } from '../gpu/ops/matmul.ts';
import { MatVec } from '../gpu/ops/matvec.ts';
import type { BoundOp } from '../gpu/ops/op.ts';
import { RmsNorm } from '../gpu/ops/rmsnorm.ts';
import { Rope } from '../gpu/ops/rope.ts';
import { Sampler } from '../gpu/ops/sampler.ts';
import { encodeK, isKDtype, type KDtype } from '../formats/kquant.ts';
import { encodedByteLengths, isQuantized, type WeightDtype } from '../formats/quant.ts';
import { SYNTH_SHAPES } from '../model/synthetic.ts';
import { destroyWeight, planChunks, weightBytes, type GpuWeight } from '../gpu/weights.ts';

export const USAGE = 'usage: llama-webgpu bench-kernels [--adapter llvmpipe|swiftshader|default] [--only SUBSTRING] [--seconds S] [--json]';

const { dim: DIM, hiddenDim: HIDDEN, vocabSize: VOCAB } = SYNTH_SHAPES['llama2-7b'];
const PREFILL = 128;

/** One benchmark row: a bound op, how many rows/tokens to encode it with, and the weight bytes one dispatch reads. */
interface Bench {
  op: BoundOp;
  n?: number;
  bytes: number;
  cleanup?: () => void;
}

/** A weight of random bytes in `dtype`, chunked like uploadWeight (no CPU encoding: fast for 7B shapes). */
function randomWeight(gpu: Gpu, name: string, rows: number, cols: number, dtype: WeightDtype): GpuWeight {
  const chunks = planChunks(name, dtype, rows, cols, 'f16', gpu.limits.maxStorageBufferBindingSize).map(({ rowStart, rows: n }) => {
    const sizes = encodedByteLengths(dtype, n, cols, 'f16');
    const data = gpu.storage(`${name}.rows${rowStart}.w_q`, sizes.data);
    if (isKDtype(dtype)) fillPattern(gpu, data, kBlocks(dtype, cols));
    else fillRandom(gpu, data, dtype === 'f32' ? 'f32' : dtype === 'f16' ? 'f16' : 'bytes');
    const chunk = { rowStart, rows: n, data, scales: undefined as GPUBuffer | undefined };
    if (isQuantized(dtype)) {
      chunk.scales = gpu.storage(`${name}.rows${rowStart}.w_s`, sizes.scales);
      fillRandom(gpu, chunk.scales, 'f16');
    }
    return chunk;
  });
  return { name, dtype, rows, cols, scaleDtype: 'f16', chunks };
}

/** 64 rows of `cols` random values quantized into k-quant blocks (random bytes would make NaN and denormal d). */
function kBlocks(dtype: KDtype, cols: number): Uint8Array {
  const values = new Float32Array(64 * cols);
  let seed = 12345;
  for (let i = 0; i < values.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    values[i] = seed / 2 ** 32 - 0.5;
  }
  return encodeK(values, dtype).data;
}

/** Fills a buffer with copies of `pattern` (a multiple of 4 bytes). */
function fillPattern(gpu: Gpu, buffer: GPUBuffer, pattern: Uint8Array): void {
  for (let off = 0; off < buffer.size; off += pattern.byteLength) {
    gpu.device.queue.writeBuffer(buffer, off, pattern, 0, Math.min(pattern.byteLength, buffer.size - off));
  }
}

/** Fills a buffer with random finite normal f32, f16 pairs, or bytes, 16 MiB at a time. */
function fillRandom(gpu: Gpu, buffer: GPUBuffer, kind: 'f32' | 'f16' | 'bytes'): void {
  const block = new Uint32Array(4 << 20);
  let seed = 0x9e3779b9;
  for (let i = 0; i < block.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    if (kind === 'bytes') block[i] = seed;
    // f32 with exponent 120..127, or two f16 with exponent 10..13: magnitudes around 0.01..1.
    else if (kind === 'f32') block[i] = (seed & 0x807fffff) | ((120 + (seed >>> 28) / 2) << 23);
    else block[i] = (seed & 0x83ff83ff) | ((10 + ((seed >>> 12) & 3)) << 10) | ((10 + ((seed >>> 28) & 3)) << 26);
  }
  for (let off = 0; off < buffer.size; off += block.byteLength) {
    const n = Math.min(block.byteLength, buffer.size - off);
    gpu.device.queue.writeBuffer(buffer, off, block, 0, n / 4);
  }
}

/** A named bench, built (weights uploaded) only when it runs. */
interface Maker {
  name: string;
  make: () => Bench;
}

function allBenches(gpu: Gpu): Maker[] {
  const makers: Maker[] = [];
  const x = gpu.storage('bench.x', PREFILL * HIDDEN * 4);
  fillRandom(gpu, x, 'f32');
  const y = gpu.storage('bench.y', PREFILL * Math.max(VOCAB, HIDDEN) * 4);
  const shapes = [
    [DIM, DIM, 'wq'],
    [HIDDEN, DIM, 'w1'],
    [DIM, HIDDEN, 'w2'],
    [VOCAB, DIM, 'wcls'],
  ] as const;
  // q4 runs the lanes kernel by default on CPU adapters with 8-lane subgroups; 'matvec' forces the other one.
  const decode: [WeightDtype, 'matvec' | undefined][] = [
    ['q4', undefined], ['q4', 'matvec'], ['q4k', undefined], ['q4k', 'matvec'], ['q5k', undefined], ['q6k', undefined],
    ['q8', undefined], ['f16', undefined], ['f32', undefined],
  ];
  for (const [dtype, kernel] of decode) {
    for (const [rows, cols, what] of shapes) {
      makers.push({
        name: `matvec ${dtype} ${rows}x${cols} (${what})${kernel ? ` ${kernel}` : ''}`,
        make: () => {
          const w = randomWeight(gpu, `bench.${what}`, rows, cols, dtype);
          const op = new MatVec(gpu, w, { kernel }).bind(`bench.matvec.${what}`, x, y, { accumulate: what === 'w2' });
          return { op, bytes: weightBytes(w), cleanup: () => destroyWeight(w) };
        },
      });
    }
  }
  type Prefill = [WeightDtype, number, number, string, 'tiled' | 'matvec' | undefined];
  const prefill: Prefill[] = [
    ...(['q4', 'q4k', 'f16'] as WeightDtype[]).flatMap((dtype) => shapes.slice(0, 3).map(([r, c, what]): Prefill => [dtype, r, c, what, undefined])),
    ['q5k', DIM, DIM, 'wq', undefined],
    ['q6k', DIM, DIM, 'wq', undefined],
    ['q4', DIM, DIM, 'wq', 'matvec'],
    ['q4', DIM, DIM, 'wq', 'tiled'],
  ];
  for (const [dtype, rows, cols, what, kernel] of prefill) {
    makers.push({
      name: `matmul ${dtype} ${rows}x${cols} n=${PREFILL}${kernel ? ` ${kernel}` : ''}`,
      make: () => {
        const w = randomWeight(gpu, `bench.${what}`, rows, cols, dtype);
        const op = new MatMul(gpu, w, PREFILL, { kernel }).bind(`bench.matmul.${what}`, x, y);
        return { op, n: PREFILL, bytes: weightBytes(w), cleanup: () => destroyWeight(w) };
      },
    });
  }
  for (const dtype of ['q4', 'f16', 'f32'] as WeightDtype[]) {
    makers.push({
      name: `embedding ${dtype} ${VOCAB}x${DIM}`,
      make: () => {
        const w = randomWeight(gpu, 'bench.tokenEmbedding', VOCAB, DIM, dtype);
        const tokens = gpu.storage('bench.tokens', new Uint32Array([VOCAB - 1]));
        const op = new Embedding(gpu, w).bind('bench.embedding', tokens, y);
        const row = encodedByteLengths(dtype, 1, DIM);
        return { op, n: 1, bytes: row.data + (isQuantized(dtype) ? row.scales : 0), cleanup: () => destroyWeight(w) };
      },
    });
  }
  makers.push({
    name: `rmsnorm ${DIM}`,
    make: () => {
      const weight = gpu.storage('bench.rmsAtt', DIM * 4);
      fillRandom(gpu, weight, 'f32');
      const op = new RmsNorm(gpu, DIM, 1e-5).bind('bench.rmsnorm', x, weight, y);
      return { op, n: 1, bytes: DIM * 4 * 3, cleanup: () => weight.destroy() };
    },
  });
  return makers;
}

const CONTEXT = 1024;
const N_HEADS = 32;
const HEAD_DIM = DIM / N_HEADS;

/**
 * The other ops of a decode step. `bytes` counts the activations or cache the op reads and writes. The per-step
 * uniform sits at the last position of the context: decode attention reads the whole cache.
 */
function otherOps(gpu: Gpu): Maker[] {
  const step = gpu.device.createBuffer({ label: 'bench.step', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  gpu.device.queue.writeBuffer(step, 0, new Uint32Array([CONTEXT - 1, 1, 0, 0]));
  const cacheBytes = (cache: KvCache) => CONTEXT * DIM * (cache.f16 ? 2 : 4);
  return [
    {
      name: `rope ${N_HEADS}x${HEAD_DIM} q+k, k+v into the cache`,
      make: () => {
        const cache = createKvCache(gpu, 'bench', CONTEXT, DIM);
        const qkv = gpu.storage('bench.qkv', 3 * DIM * 4);
        const op = new Rope(gpu, { nHeads: N_HEADS, nKvHeads: N_HEADS, headDim: HEAD_DIM, theta: 10000, scale: 1, maxTokens: 1 }).bind('bench.rope', qkv, cache, step);
        // Reads q, k, v; writes q and one cache row of k and of v.
        return { op, n: 1, bytes: 4 * DIM * 4 + (2 * cacheBytes(cache)) / CONTEXT, cleanup: () => [qkv, cache.keyCache, cache.valueCache].forEach((b) => b.destroy()) };
      },
    },
    {
      name: `attention ${N_HEADS}x${HEAD_DIM} pos ${CONTEXT - 1}`,
      make: () => {
        const cache = createKvCache(gpu, 'bench', CONTEXT, DIM);
        const q = gpu.storage('bench.q', DIM * 4);
        const out = gpu.storage('bench.att', DIM * 4);
        const options = { nHeads: N_HEADS, nKvHeads: N_HEADS, headDim: HEAD_DIM, maxSeqLen: CONTEXT, maxTokens: 1 };
        const op = new Attention(gpu, options, cache).bind('bench.attention', q, out, step);
        return { op, n: 1, bytes: 2 * cacheBytes(cache), cleanup: () => [q, out, cache.keyCache, cache.valueCache].forEach((b) => b.destroy()) };
      },
    },
    {
      name: `sample ${VOCAB} greedy`,
      make: () => {
        const logits = gpu.storage('bench.logits', VOCAB * 4);
        fillRandom(gpu, logits, 'f32');
        const tokens = gpu.storage('bench.tokens', 16);
        return { op: new Sampler(gpu, VOCAB).bind('bench.sample', logits, tokens, 0, step), n: 1, bytes: VOCAB * 4, cleanup: () => [logits, tokens].forEach((b) => b.destroy()) };
      },
    },
  ];
}

/**
 * Seconds per dispatch, wall clock and CPU (this process's CPU time: with a software adapter the GPU's work runs
 * on this process's threads, so CPU time stays meaningful when other programs share the cores). A warm-up
 * submit, then enough repetitions in one pass to fill about `seconds`.
 */
async function time(gpu: Gpu, b: Bench, seconds: number): Promise<{ wall: number; cpu: number }> {
  const submit = async (reps: number, expectMs = 0) => {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await gpu.run(
      'bench',
      (pass) => {
        for (let i = 0; i < reps; i++) b.op.encode(pass, b.n);
      },
      { expectMs },
    );
    const c = process.cpuUsage(c0);
    return { wall: (performance.now() - t0) / 1000 / reps, cpu: (c.user + c.system) / 1e6 / reps };
  };
  await submit(1); // compiles the pipeline
  const one = await submit(1);
  const reps = Math.max(2, Math.min(1000, Math.round(seconds / Math.max(one.wall, 1e-5))));
  // Dawn in Node busy-polls while it waits, taking a core from a software GPU: sleep through 80% of the
  // expected time (from the single run) before waiting.
  return submit(reps, 0.8 * reps * one.wall * 1000);
}

/** One row of bench-kernels --json. */
export interface KernelTiming {
  name: string;
  msPerDispatch: number;
  /** Weight (or activation, for the small ops) bytes one dispatch reads. */
  bytes: number;
  gbps: number;
  cpuMsPerDispatch: number;
}

export async function run(args: string[]): Promise<number> {
  let p;
  try {
    p = parseArgs(args, { values: ['adapter', 'only', 'seconds'], flags: ['json'] });
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    if (e instanceof UsageError) return 2;
    throw e;
  }
  const text = (k: string) => {
    const v = p.options.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  const request = resolveAdapterRequest(text('adapter'));
  const only = text('only');
  const seconds = Number(text('seconds') ?? 1);
  const json = p.options.has('json');
  // With --json the table goes to stderr as progress and stdout holds only the JSON.
  const say = json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  const { gpu, choice, errors } = await openNodeGpu(request.name, { source: request.source });
  const s = gpu.summary;
  say(`adapter: ${s.description || s.device} (${s.vendor} / ${s.architecture}), shader-f16=${s.f16}, subgroups=${s.subgroups}; ${choice.kind}: ${choice.reason}`);
  say(`${'kernel'.padEnd(40)} ${'ms/dispatch'.padStart(12)} ${'GB/s'.padStart(8)} ${'CPU ms'.padStart(10)} ${'GB/CPU-s'.padStart(9)}`);
  const rows: KernelTiming[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const { name, make } of [...allBenches(gpu), ...otherOps(gpu)]) {
    if (only && !name.includes(only)) continue;
    let b: Bench;
    try {
      b = make();
    } catch (e) {
      say(`${name.padEnd(40)} skipped: ${(e as Error).message}`);
      skipped.push({ name, reason: (e as Error).message });
      continue;
    }
    const t = await time(gpu, b, seconds);
    const gbps = (s: number) => (b.bytes / s / 1e9).toFixed(2);
    say(
      `${name.padEnd(40)} ${(t.wall * 1000).toFixed(3).padStart(12)} ${gbps(t.wall).padStart(8)} ${(t.cpu * 1000).toFixed(1).padStart(10)} ${gbps(t.cpu).padStart(9)}`,
    );
    rows.push({ name, msPerDispatch: t.wall * 1000, bytes: b.bytes, gbps: b.bytes / t.wall / 1e9, cpuMsPerDispatch: t.cpu * 1000 });
    b.cleanup?.();
  }
  if (errors.count > 0) {
    console.error(`bench-kernels: ${errors.count} WebGPU errors (first: ${errors.first}); the timings are not valid.`);
    gpu.destroy();
    return 1;
  }
  if (json) {
    const adapter = { vendor: s.vendor, architecture: s.architecture, device: s.device, description: s.description, f16: s.f16, subgroups: s.subgroups };
    console.log(JSON.stringify({ adapter, adapterKind: choice.kind, adapterReason: choice.reason, kernels: rows, skipped }, null, 2));
  }
  gpu.destroy();
  return 0;
}
