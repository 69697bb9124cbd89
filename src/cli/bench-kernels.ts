/**
 * llama-webgpu bench-kernels [--adapter llvmpipe|swiftshader|default] [--shape NAME] [--only SUBSTRING] [--seconds S] [--json]
 *
 * Checks, then times, every kernel at a model's decode and prefill shapes (--shape, a synth shape: default
 * llama2-7b). As in llm.c's dev/cuda benchmarks, each kernel first runs once on inputs the CPU knows and its output
 * is compared with the float64 reference (src/reference/) at the tolerance the kernel tests use; a kernel whose
 * output is wrong is not timed: its worst element (index, got, expected, tolerance) is printed and the command
 * exits 1. The larger linear outputs are checked on an even spread of rows (CHECK_MACS multiply-adds at most).
 * Each time comes with its arithmetic: the bytes one call reads and writes, as a formula, and GB/s; FLOPs and
 * GFLOP/s for the matrix and attention kernels.
 * Each kernel is recorded many times in one compute pass and submitted once (after a warm-up submit), timed with
 * performance.now around queue.onSubmittedWorkDone, so per-submit overhead is spread over the repetitions. The CPU
 * figure is the process's CPU time per dispatch (the work itself, on software adapters).
 * The adapter is chosen as for `bench` (--adapter, else LLAMA_WEBGPU_ADAPTER, else the best installed). --json prints
 * the rows as one JSON object on stdout and the text on stderr.
 */
import { parseArgs, UsageError } from './args.ts';
import type { Gpu } from '../gpu/device.ts';
import { openNodeGpu, resolveAdapterRequest } from '../gpu/node.ts';
import { Attention } from '../gpu/ops/attention.ts';
import { Embedding } from '../gpu/ops/embedding.ts';
import { createKvCache } from '../gpu/ops/kv-cache.ts';
import { MatMul } from '../gpu/ops/matmul.ts';
import { MatVec } from '../gpu/ops/matvec.ts';
import type { BoundOp } from '../gpu/ops/op.ts';
import { RmsNorm } from '../gpu/ops/rmsnorm.ts';
import { Rope } from '../gpu/ops/rope.ts';
import { Sampler } from '../gpu/ops/sampler.ts';
import type { WeightDtype } from '../formats/quant.ts';
import { SYNTH_SHAPES, type SynthShape } from '../model/synthetic.ts';
import { ATTENTION_TOL, attentionRef, F16_RTOL, ROPE_TOL, ropeRef } from '../reference/attention.ts';
import { closeTo, describeMismatch, formatNumber, worstElement, type CloseTolerance, type Mismatch } from '../reference/compare.ts';
import { readRows, writeRows } from '../reference/kv-rows.ts';
import { EMBEDDING_TOL, embeddingRef, LINEAR_ABS_TOL, linearBound, MATVEC_REL_TOL, matmulRef, matmulRelTol } from '../reference/linear.ts';
import { RMSNORM_TOL, rmsnormRef } from '../reference/norm.ts';
import { argmaxRef } from '../reference/sampling.ts';
import { flopsLine, ms, randomWeight, trafficBytes, trafficLine, uniform, type BenchWeight, type Term } from './kernel-inputs.ts';

export const USAGE =
  'usage: llama-webgpu bench-kernels [--adapter llvmpipe|swiftshader|default] [--shape NAME] [--only SUBSTRING] [--seconds S] [--json]';

const PREFILL = 128;
const CONTEXT = 1024;
/** Most multiply-adds a linear kernel's check spends on the CPU (the reference and the tolerance each). */
const CHECK_MACS = 2 ** 26;

/** The outcome of running a kernel once and comparing its output with the reference. */
interface Check {
  /** What was compared, e.g. "y: 4096 of 4096 rows". */
  what: string;
  /** The tolerance, e.g. "2^-16·S + 1e-6, S = sum |W x|". */
  tolerance: string;
  /** The worst element (ratio > 1: outside the tolerance); `where` names it, e.g. "y[token 3, row 17]". */
  worst?: Mismatch & { where: string };
}

/** One benchmark: a bound op, how many rows/tokens to encode it with, what a call moves and computes, its check. */
interface Bench {
  op: BoundOp;
  n?: number;
  traffic: Term[];
  /** Factors whose product is the FLOPs of one call, where a FLOP rate means something. */
  flops?: number[];
  check: () => Promise<Check>;
  cleanup?: () => void;
}

/** A named bench, built (weights uploaded) only when it runs. */
interface Maker {
  name: string;
  make: () => Bench;
}

/** Test hooks: `tamper` may alter a kernel's output after it is read back, before it is compared. */
export interface BenchHooks {
  tamper?: (kernel: string, got: Float32Array) => void;
}

/** Context shared by the makers: the GPU, the shape, shared buffers and the hooks. */
interface Ctx {
  gpu: Gpu;
  hooks: BenchHooks;
  dim: number;
  hidden: number;
  vocab: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** f32 [PREFILL, max(dim, hidden)] uniform in [-1, 1), in `xBuf`. */
  x: Float32Array;
  xBuf: GPUBuffer;
  /** f32 [PREFILL, max(vocab, hidden)] outputs. */
  y: GPUBuffer;
  step: GPUBuffer;
}

/** Runs `op` once and reads back `buffer` as f32 (through the tamper hook). */
async function runOnce(c: Ctx, name: string, op: BoundOp, n: number | undefined, buffer: GPUBuffer, offset = 0, bytes?: number): Promise<Float32Array> {
  await c.gpu.run('bench.check', (pass) => op.encode(pass, n));
  const got = new Float32Array(await c.gpu.read(buffer, offset, bytes));
  c.hooks.tamper?.(name, got);
  return got;
}

/** A Check of `got` against `want` with per-element tolerance `tol`; `where(i)` names element i ("y[row 5]"). */
function compared(what: string, tolerance: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number, where: (i: number) => string): Check {
  const worst = worstElement(got, want, tol);
  return { what, tolerance, worst: worst && { ...worst, where: where(worst.index) } };
}

const closeText = (t: CloseTolerance) => `${formatNumber(t.atol)} + ${formatNumber(t.rtol)}·|want|`;

/** Rows of `rows` to check when each costs `perRow` multiply-adds: all, or an even spread at varying offsets. */
function checkedRows(rows: number, perRow: number): number[] {
  const m = Math.min(rows, Math.max(1, Math.floor(CHECK_MACS / perRow)));
  const step = Math.floor(rows / m);
  return Array.from({ length: m }, (_, i) => i * step + ((i * 7) % step));
}

/**
 * Matrix x vector (n = 1) or matrix x matrix: Y[t, r] = sum_c W[r, c] X[t, c] (+ Y0 when accumulating) against
 * matmulRef on the decoded rows, at the kernel tests' tolerance.
 */
function linearBench(c: Ctx, name: string, w: BenchWeight, op: BoundOp, n: number, accumulate: boolean): Bench {
  const { rows, cols, dtype } = w.weight;
  const y0 = accumulate ? uniform(n * rows, 3) : undefined;
  const rel = n === 1 ? MATVEC_REL_TOL : matmulRelTol(cols);
  const check = async (): Promise<Check> => {
    c.gpu.write(c.y, y0 ?? new Float32Array(n * rows).fill(Number.NaN));
    const all = await runOnce(c, name, op, n === 1 ? undefined : n, c.y, 0, n * rows * 4);
    const picked = checkedRows(rows, n * cols);
    const got = new Float64Array(picked.length * n);
    const want = new Float64Array(picked.length * n);
    const tol = new Float64Array(picked.length * n);
    picked.forEach((r, k) => {
      const wr = w.row(r);
      const y0r = y0 && Float64Array.from({ length: n }, (_, t) => y0[t * rows + r]);
      const ref = matmulRef(wr, c.x, n, 1, cols, y0r);
      for (let t = 0; t < n; t++) {
        const i = k * n + t;
        got[i] = all[t * rows + r];
        want[i] = ref[t];
        tol[i] = rel * linearBound(wr, c.x.subarray(t * cols, (t + 1) * cols), 1, cols, dtype, y0r && [y0r[t]])[0] + LINEAR_ABS_TOL;
      }
    });
    const where = (i: number) => `y[${n > 1 ? `token ${i % n}, ` : ''}row ${picked[Math.floor(i / n)]}]`;
    const what = `y: ${picked.length} of ${rows} rows${n > 1 ? ` x ${n} tokens` : ''}`;
    const tolerance = `${formatNumber(rel)}·S + ${formatNumber(LINEAR_ABS_TOL)}, S = sum |W x|${accumulate ? ' + |y0|' : ''}`;
    return compared(what, tolerance, got, want, (i) => tol[i], where);
  };
  const y = accumulate ? { what: 'y read+written', dims: [2, rows], size: 4 } : { what: 'y', dims: [n, rows], size: 4 };
  return {
    op,
    n: n === 1 ? undefined : n,
    traffic: [{ what: 'weights', dims: [rows, cols], size: w.bytesPerElement }, { what: 'x', dims: [n, cols], size: 4 }, y],
    flops: n === 1 ? [2, rows, cols] : [2, n, rows, cols],
    check,
    cleanup: w.destroy,
  };
}

function linearOps(c: Ctx): Maker[] {
  const { gpu, dim, hidden, vocab } = c;
  const makers: Maker[] = [];
  const shapes = [
    [dim, dim, 'wq'],
    [hidden, dim, 'w1'],
    [dim, hidden, 'w2'],
    [vocab, dim, 'wcls'],
  ] as const;
  // q4 runs the lanes kernel by default on CPU adapters with 8-lane subgroups; 'matvec' forces the other one.
  const decode: [WeightDtype, 'matvec' | undefined][] = [
    ['q4', undefined], ['q4', 'matvec'], ['q4k', undefined], ['q4k', 'matvec'], ['q5k', undefined], ['q6k', undefined],
    ['q8', undefined], ['f16', undefined], ['f32', undefined],
  ];
  for (const [dtype, kernel] of decode) {
    for (const [rows, cols, what] of shapes) {
      const name = `matvec ${dtype} ${rows}x${cols} (${what})${kernel ? ` ${kernel}` : ''}`;
      makers.push({
        name,
        make: () => {
          const w = randomWeight(gpu, `bench.${what}`, rows, cols, dtype);
          const op = new MatVec(gpu, w.weight, { kernel }).bind(`bench.matvec.${what}`, c.xBuf, c.y, { accumulate: what === 'w2' });
          return linearBench(c, name, w, op, 1, what === 'w2');
        },
      });
    }
  }
  type Prefill = [WeightDtype, number, number, string, 'tiled' | 'matvec' | undefined];
  const prefill: Prefill[] = [
    ...(['q4', 'q4k', 'f16'] as WeightDtype[]).flatMap((dtype) => shapes.slice(0, 3).map(([r, cols, what]): Prefill => [dtype, r, cols, what, undefined])),
    ['q5k', dim, dim, 'wq', undefined],
    ['q6k', dim, dim, 'wq', undefined],
    ['q4', dim, dim, 'wq', 'matvec'],
    ['q4', dim, dim, 'wq', 'tiled'],
  ];
  for (const [dtype, rows, cols, what, kernel] of prefill) {
    const name = `matmul ${dtype} ${rows}x${cols} n=${PREFILL}${kernel ? ` ${kernel}` : ''}`;
    makers.push({
      name,
      make: () => {
        const w = randomWeight(gpu, `bench.${what}`, rows, cols, dtype);
        const op = new MatMul(gpu, w.weight, PREFILL, { kernel }).bind(`bench.matmul.${what}`, c.xBuf, c.y);
        return linearBench(c, name, w, op, PREFILL, false);
      },
    });
  }
  for (const dtype of ['q4', 'f16', 'f32'] as WeightDtype[]) {
    const name = `embedding ${dtype} ${vocab}x${dim}`;
    makers.push({
      name,
      make: () => {
        const w = randomWeight(gpu, 'bench.tokenEmbedding', vocab, dim, dtype);
        const tokens = gpu.storage('bench.tokens', new Uint32Array([vocab - 1]));
        const op = new Embedding(gpu, w.weight).bind('bench.embedding', tokens, c.y);
        const check = async () => {
          const got = await runOnce(c, name, op, 1, c.y, 0, dim * 4);
          const want = embeddingRef(w.row(vocab - 1), [0], dim);
          return compared(`out: row ${vocab - 1}, ${dim} values`, closeText(EMBEDDING_TOL), got, want, closeTo(EMBEDDING_TOL, want), (i) => `out[${i}]`);
        };
        const traffic = [{ what: 'token', dims: [1], size: 4 }, { what: 'row', dims: [dim], size: w.bytesPerElement }, { what: 'out', dims: [dim], size: 4 }];
        return { op, n: 1, traffic, check, cleanup: () => (w.destroy(), tokens.destroy()) };
      },
    });
  }
  return makers;
}

/** The other ops of a decode step. The per-step uniform sits at the last position of the context. */
function otherOps(c: Ctx): Maker[] {
  const { gpu, dim, vocab, nHeads, nKvHeads, headDim } = c;
  const kvDim = nKvHeads * headDim;
  const pos = CONTEXT - 1;
  const heads = { nHeads, nKvHeads, headDim };
  return [
    {
      name: `rmsnorm ${dim}`,
      make: () => {
        const w = uniform(dim, 4);
        const weight = gpu.storage('bench.rmsAtt', w);
        const op = new RmsNorm(gpu, dim, 1e-5).bind('bench.rmsnorm', c.xBuf, weight, c.y);
        const check = async () => {
          const got = await runOnce(c, `rmsnorm ${dim}`, op, 1, c.y, 0, dim * 4);
          const want = rmsnormRef(c.x.subarray(0, dim), w, 1, dim, 1e-5);
          return compared(`out: ${dim} values`, closeText(RMSNORM_TOL), got, want, closeTo(RMSNORM_TOL, want), (i) => `out[${i}]`);
        };
        const traffic = [{ what: 'x', dims: [dim], size: 4 }, { what: 'weight', dims: [dim], size: 4 }, { what: 'out', dims: [dim], size: 4 }];
        return { op, n: 1, traffic, check, cleanup: () => weight.destroy() };
      },
    },
    {
      name: `rope ${nHeads}x${headDim} q+k, k+v into the cache`,
      make: () => {
        const name = `rope ${nHeads}x${headDim} q+k, k+v into the cache`;
        const cache = createKvCache(gpu, 'bench', CONTEXT, kvDim);
        const qkv0 = uniform(dim + 2 * kvDim, 5);
        const qkv = gpu.storage('bench.qkv', qkv0.byteLength);
        const op = new Rope(gpu, { ...heads, theta: 10000, scale: 1, maxTokens: 1 }).bind('bench.rope', qkv, cache, c.step);
        const check = async () => {
          gpu.write(qkv, qkv0);
          const q = await runOnce(c, name, op, 1, qkv, 0, dim * 4);
          const k = await readRows(gpu, cache, cache.keyCache, pos, 1);
          const v = await readRows(gpu, cache, cache.valueCache, pos, 1);
          const got = Float32Array.of(...q, ...k, ...v);
          const [q0, k0, v0] = [qkv0.subarray(0, dim), qkv0.subarray(dim, dim + kvDim), qkv0.subarray(dim + kvDim)];
          const want = Float64Array.of(...ropeRef(q0, 1, dim, headDim, pos, 10000, 1), ...ropeRef(k0, 1, kvDim, headDim, pos, 10000, 1), ...v0);
          // Keys and values in an f16 cache carry the half rounding; f32-cache values are copied exactly.
          const rtol = (i: number) => (i < dim ? ROPE_TOL.rtol : cache.f16 ? F16_RTOL : i < dim + kvDim ? ROPE_TOL.rtol : 0);
          const atol = (i: number) => (i < dim + kvDim ? ROPE_TOL.atol : cache.f16 ? 2 ** -24 : 0);
          const tolerance = `${closeText(ROPE_TOL)}${cache.f16 ? `, cached k and v ${formatNumber(F16_RTOL)}·|want| (f16)` : ', v exact'}`;
          const where = (i: number) => (i < dim ? `q[${i}]` : i < dim + kvDim ? `cached k[${i - dim}]` : `cached v[${i - dim - kvDim}]`);
          return compared(`q, cached k and v at position ${pos}`, tolerance, got, want, (i) => atol(i) + rtol(i) * Math.abs(want[i]), where);
        };
        const cacheSize = cache.f16 ? 2 : 4;
        const traffic = [
          { what: 'qkv', dims: [dim + 2 * kvDim], size: 4 },
          { what: 'q written', dims: [dim], size: 4 },
          { what: 'k, v rows', dims: [2, kvDim], size: cacheSize },
        ];
        return { op, n: 1, traffic, check, cleanup: () => [qkv, cache.keyCache, cache.valueCache].forEach((b) => b.destroy()) };
      },
    },
    {
      name: `attention ${nHeads}x${headDim} pos ${pos}`,
      make: () => {
        const cache = createKvCache(gpu, 'bench', CONTEXT, kvDim);
        const q0 = uniform(dim, 6);
        const q = gpu.storage('bench.q', q0);
        const out = gpu.storage('bench.att', dim * 4);
        const op = new Attention(gpu, { ...heads, maxSeqLen: CONTEXT, maxTokens: 1 }, cache).bind('bench.attention', q, out, c.step);
        const check = async () => {
          const keys = writeRows(gpu, cache, cache.keyCache, uniform(CONTEXT * kvDim, 7), 0);
          const values = writeRows(gpu, cache, cache.valueCache, uniform(CONTEXT * kvDim, 8), 0);
          const got = await runOnce(c, `attention ${nHeads}x${headDim} pos ${pos}`, op, 1, out);
          const want = attentionRef(q0, keys, values, 1, pos, heads);
          return compared(`out: ${dim} values over ${CONTEXT} positions`, closeText(ATTENTION_TOL), got, want, closeTo(ATTENTION_TOL, want), (i) => `out[${i}]`);
        };
        const traffic = [
          { what: 'q', dims: [dim], size: 4 },
          { what: 'K, V', dims: [2, CONTEXT, kvDim], size: cache.f16 ? 2 : 4 },
          { what: 'out', dims: [dim], size: 4 },
        ];
        // q.K and att.V: 2 multiply-adds per head element per position.
        return { op, n: 1, traffic, flops: [4, CONTEXT, nHeads, headDim], check, cleanup: () => [q, out, cache.keyCache, cache.valueCache].forEach((b) => b.destroy()) };
      },
    },
    {
      name: `sample ${vocab} greedy`,
      make: () => {
        const values = uniform(vocab, 9);
        const logits = gpu.storage('bench.logits', values);
        const tokens = gpu.storage('bench.tokens', 16);
        const op = new Sampler(gpu, vocab).bind('bench.sample', logits, tokens, 0, c.step);
        const check = async () => {
          await gpu.run('bench.check', (pass) => op.encode(pass));
          const got = Float32Array.of(new Uint32Array(await gpu.read(tokens, 0, 4))[0]);
          c.hooks.tamper?.(`sample ${vocab} greedy`, got);
          return compared(`the token for ${vocab} logits`, '0 (the argmax, ties to the lowest id)', got, [argmaxRef(values)], () => 0, () => 'token');
        };
        return { op, n: 1, traffic: [{ what: 'logits', dims: [vocab], size: 4 }, { what: 'token', dims: [1], size: 4 }], check, cleanup: () => [logits, tokens].forEach((b) => b.destroy()) };
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
  /** Bytes one dispatch reads and writes (weights, activations, cache), as `traffic` spells out. */
  bytes: number;
  traffic: string;
  gbps: number;
  /** FLOPs of one dispatch and the rate, for the matrix and attention kernels. */
  flops?: number;
  gflops?: number;
  cpuMsPerDispatch: number;
  /** The check that ran before the timing: what was compared, and the worst error as a fraction of its tolerance. */
  check: { what: string; tolerance: string; worstRatio: number };
}

/** A kernel whose output was wrong: the worst element, where it is, and its tolerance. */
export interface KernelFailure {
  name: string;
  what: string;
  where: string;
  got: number;
  want: number;
  tolerance: number;
}

function say(json: boolean): (line: string) => void {
  // With --json the text goes to stderr as progress and stdout holds only the JSON.
  return json ? (line) => console.error(line) : (line) => console.log(line);
}

export async function run(args: string[], hooks: BenchHooks = {}): Promise<number> {
  let p;
  let shape: SynthShape;
  try {
    p = parseArgs(args, { values: ['adapter', 'only', 'seconds', 'shape'], flags: ['json'] });
    const name = p.options.get('shape') ?? 'llama2-7b';
    if (typeof name !== 'string' || !(name in SYNTH_SHAPES)) throw new UsageError(`--shape must be one of ${Object.keys(SYNTH_SHAPES).join(', ')}`);
    shape = name as SynthShape;
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
  const out = say(json);
  const { gpu, choice, errors } = await openNodeGpu(request.name, { source: request.source });
  const s = gpu.summary;
  out(`adapter: ${s.description || s.device} (${s.vendor} / ${s.architecture}), shader-f16=${s.f16}, subgroups=${s.subgroups}; ${choice.kind}: ${choice.reason}`);
  const m = SYNTH_SHAPES[shape];
  out(`shape: ${shape} (dim ${m.dim}, hidden ${m.hiddenDim}, vocab ${m.vocabSize}, ${m.nHeads} heads, ${m.nKvHeads} kv heads); prefill ${PREFILL} tokens; context ${CONTEXT}`);
  const x = uniform(PREFILL * Math.max(m.dim, m.hiddenDim), 1);
  const step = gpu.device.createBuffer({ label: 'bench.step', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  gpu.write(step, new Uint32Array([CONTEXT - 1, 1, 0, 0]));
  const c: Ctx = {
    gpu,
    hooks,
    dim: m.dim,
    hidden: m.hiddenDim,
    vocab: m.vocabSize,
    nHeads: m.nHeads,
    nKvHeads: m.nKvHeads,
    headDim: m.dim / m.nHeads,
    x,
    xBuf: gpu.storage('bench.x', x),
    y: gpu.storage('bench.y', PREFILL * Math.max(m.vocabSize, m.hiddenDim) * 4),
    step,
  };
  const rows: KernelTiming[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const failed: KernelFailure[] = [];
  for (const { name, make } of [...linearOps(c), ...otherOps(c)]) {
    if (only && !name.includes(only)) continue;
    let b: Bench;
    try {
      b = make();
    } catch (e) {
      out(`${name}: skipped: ${(e as Error).message}`);
      skipped.push({ name, reason: (e as Error).message });
      continue;
    }
    out(name);
    const check = await b.check();
    const w = check.worst;
    if (!w || w.ratio > 1) {
      const detail = w ? `${describeMismatch('', w, w.where)} (${check.tolerance}; checked ${check.what})` : `${check.what}: nothing compared`;
      out(`  WRONG  ${detail}. Not timed.`);
      if (w) failed.push({ name, what: check.what, where: w.where, got: w.got, want: w.want, tolerance: w.tolerance });
      b.cleanup?.();
      continue;
    }
    out(`  check  ${check.what} within ${check.tolerance}: worst error ${formatNumber(w.ratio)}x the tolerance`);
    const t = await time(gpu, b, seconds);
    const bytes = trafficBytes(b.traffic);
    out(`  time   ${ms(t.wall)} per dispatch (CPU ${ms(t.cpu)})`);
    out(`  bytes  ${trafficLine(b.traffic, t.wall)}`);
    if (b.flops) out(`  flops  ${flopsLine(b.flops, t.wall)}`);
    const flops = b.flops?.reduce((a, f) => a * f, 1);
    rows.push({
      name,
      msPerDispatch: t.wall * 1000,
      bytes,
      traffic: trafficLine(b.traffic, t.wall),
      gbps: bytes / t.wall / 1e9,
      ...(flops ? { flops, gflops: flops / t.wall / 1e9 } : {}),
      cpuMsPerDispatch: t.cpu * 1000,
      check: { what: check.what, tolerance: check.tolerance, worstRatio: w.ratio },
    });
    b.cleanup?.();
  }
  let code = 0;
  if (errors.count > 0) {
    console.error(`bench-kernels: ${errors.count} WebGPU errors (first: ${errors.first}); the timings are not valid.`);
    code = 1;
  }
  if (failed.length > 0) {
    console.error(`bench-kernels: ${failed.length} kernel(s) gave wrong results and were not timed: ${failed.map((f) => f.name).join('; ')}`);
    code = 1;
  }
  if (json) {
    const adapter = { vendor: s.vendor, architecture: s.architecture, device: s.device, description: s.description, f16: s.f16, subgroups: s.subgroups };
    console.log(JSON.stringify({ adapter, adapterKind: choice.kind, adapterReason: choice.reason, shape, kernels: rows, skipped, failed }, null, 2));
  }
  gpu.destroy();
  return code;
}
