/**
 * `llama-webgpu bench-kernels` on the tiny synthetic shape, on each test adapter: every kernel is checked against its
 * float64 reference before it is timed, each time comes with its byte (and FLOP) arithmetic, and a kernel whose
 * output is wrong (the `tamper` hook alters what was read back) is refused: its mismatch is printed, it is not timed,
 * and the command exits 1. No assertion here depends on speed.
 */
import { describe, expect, it } from 'vitest';
import { run, type KernelTiming } from '../../src/cli/bench-kernels.ts';
import { testGpus } from '../helpers/gpu.ts';
import { captureOutput } from '../helpers/console.ts';

const out = captureOutput();
const gpus = await testGpus();

/** The JSON bench-kernels printed on stdout. */
const report = () => JSON.parse(out.stdout.join('\n')) as { kernels: KernelTiming[]; skipped: { name: string }[]; failed: { name: string; where: string }[] };

it('an unknown --shape is a usage error (exit 2) that lists the shapes', async () => {
  expect(await run(['--shape', 'llama3'])).toBe(2);
  expect(out.stderr.join('\n')).toContain('--shape must be one of tiny, tinyllama, llama2-7b, llama2-13b, llama2-70b');
});

describe.each(gpus)('bench-kernels on $name', ({ name }) => {
  it('checks every kernel of the tiny shape, then prints its time with the bytes and FLOPs arithmetic', async () => {
    expect(await run(['--adapter', name, '--shape', 'tiny', '--seconds', '0.002', '--json'])).toBe(0);
    const r = report();
    const text = out.stderr.join('\n');
    // k-quants need rows of 256 values: skipped at dim 64, with the reason.
    expect(r.skipped.length).toBeGreaterThan(0);
    expect(r.skipped.every((s) => / q[456]k /.test(s.name))).toBe(true);
    expect(r.failed).toEqual([]);
    const names = r.kernels.map((k) => k.name);
    for (const kernel of ['matvec q4 64x64 (wq)', 'matvec f32 512x64 (wcls)', 'matmul q4 64x64 n=128 tiled', 'embedding q4 512x64', 'rmsnorm 64', 'attention 8x8 pos 1023', 'sample 512 greedy']) {
      expect(names).toContain(kernel);
    }
    expect(names.some((n) => n.startsWith('rope '))).toBe(true);
    for (const k of r.kernels) {
      expect(k.check.worstRatio).toBeLessThanOrEqual(1);
      // The check line comes before the time, the bytes line after it.
      const at = text.indexOf(`${k.name}\n`);
      const lines = text.slice(at).split('\n').slice(1, 4);
      expect(lines[0]).toMatch(/^ {2}check {2}.+ within .+: worst error \S+x the tolerance$/);
      expect(lines[1]).toMatch(/^ {2}time {3}\S+ ms per dispatch/);
      expect(lines[2]).toBe(`  bytes  ${k.traffic}`);
      expect(k.gbps).toBeCloseTo(k.bytes / (k.msPerDispatch / 1000) / 1e9, 6);
    }
    // The arithmetic spelled out: q4 is 0.5625 B per weight (a nibble and an f16 scale per 32), x and y are f32.
    const q4 = r.kernels.find((k) => k.name === 'matvec q4 64x64 (wq)')!;
    expect(q4.bytes).toBe(64 * 64 * 0.5625 + 64 * 4 + 64 * 4);
    expect(q4.traffic).toMatch(/^weights 64×64×0\.5625 B \+ x 64×4 B \+ y 64×4 B = 2\.82 kB; 2\.82 kB \/ \S+ ms = \S+ [kMG]?B\/s$/);
    const matmul = r.kernels.find((k) => k.name === 'matmul q4 64x64 n=128 tiled')!;
    expect(matmul.flops).toBe(2 * 128 * 64 * 64);
    expect(text).toMatch(/\n {2}flops {2}2×128×64×64 = 1\.05 MFLOP; 1\.05 MFLOP \/ \S+ ms = \S+ [kMG]?FLOP\/s\n/);
    // The accumulating w2 matvec reads and writes y.
    expect(r.kernels.find((k) => k.name === 'matvec q8 64x172 (w2)')!.traffic).toMatch(/ \+ y read\+written 2×64×4 B = /);
  });

  it('refuses to time a kernel whose output is wrong, naming the element, and exits 1', async () => {
    const tamper = (kernel: string, got: Float32Array) => {
      if (kernel === 'rmsnorm 64') got[5] += 0.5;
    };
    expect(await run(['--adapter', name, '--shape', 'tiny', '--only', 'rmsnorm', '--seconds', '0.002'], { tamper })).toBe(1);
    const text = out.stdout.join('\n');
    expect(text).toMatch(/\nrmsnorm 64\n {2}WRONG {2}out\[5\] is \S+, expected \S+: error 0\.5 is \S+x the tolerance \S+ \(1e-5 \+ 1e-5·\|want\|; checked out: 64 values\)\. Not timed\./);
    expect(text).not.toContain('  time ');
    expect(out.stderr.join('\n')).toContain('1 kernel(s) gave wrong results and were not timed: rmsnorm 64');
  });

  it('a wrong token from the sampler is refused too', async () => {
    const tamper = (kernel: string, got: Float32Array) => {
      if (kernel.startsWith('sample')) got[0] += 1;
    };
    expect(await run(['--adapter', name, '--shape', 'tiny', '--only', 'sample', '--seconds', '0.002', '--json'], { tamper })).toBe(1);
    expect(report().failed).toEqual([expect.objectContaining({ name: 'sample 512 greedy', where: 'token', tolerance: 0 })]);
    expect(report().kernels).toEqual([]);
  });
});
