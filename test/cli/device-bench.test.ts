/**
 * scripts/device-bench.sh, the packed benchmark for a GPU machine without Node, checked here end to end on this
 * machine's adapters: it parses, `prepare` packs node, Dawn, the CLI and the Vulkan loader (offline: the installed
 * loader, fast xz), and `run --dry-run` unpacks that pack, loads the carried loader, synthesizes two depths of a
 * tiny shape, checks stories260K's greedy text (with and without Dawn's NVIDIA f16 toggle), runs bench-encode,
 * bench-kernels and bench, and writes the summary with the roofline shares and the fit over depths. The summary's arithmetic is checked on its own first.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cardBandwidth, linearFit, summarize, type BenchRun } from '../../src/cli/bench-summary.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel } from '../helpers/models.ts';

const ROOT = path.resolve(__dirname, '../..');
const SCRIPT = path.join(ROOT, 'scripts/device-bench.sh');

describe('bench-summary', () => {
  it('knows the bandwidth of H100 and H200 cards by the names their drivers report', () => {
    expect(cardBandwidth('NVIDIA H100 80GB HBM3')?.bytesPerSecond).toBe(3.35e12);
    expect(cardBandwidth('NVIDIA H100 PCIe')?.bytesPerSecond).toBe(2.0e12);
    expect(cardBandwidth('NVIDIA H100 NVL')?.bytesPerSecond).toBe(3.9e12);
    expect(cardBandwidth('NVIDIA H200')?.bytesPerSecond).toBe(4.8e12);
    expect(cardBandwidth('NVIDIA GeForce RTX 4090')).toBeUndefined();
  });

  it('fits a line through the points and needs two distinct x', () => {
    const fit = linearFit([[4, 10], [8, 18], [32, 66]]);
    expect(fit!.a).toBeCloseTo(2, 9);
    expect(fit!.b).toBeCloseTo(2, 9);
    expect(linearFit([[4, 10]])).toBeUndefined();
    expect(linearFit([[4, 10], [4, 11]])).toBeUndefined();
  });

  it('puts decode at a share of the bandwidth roofline and extrapolates over depth', () => {
    const run = (layers: number, ms: number): BenchRun => ({
      model: `m${layers}`, adapter: 'NVIDIA H200', config: { nLayers: layers, dim: 4096 }, weightBytesPerToken: 100e6 * layers + 70e6,
      promptTokens: 128, generatedTokens: 64, prefillTokensPerSecond: 1000, decodeTokensPerSecond: 1000 / ms, decodeMsPerToken: ms,
      dispatchesPerToken: 12 * layers + 5, encodeMsPerToken: 0.5, encodeUsPerDispatch: 1, submitsPerToken: 1, loadMs: 1000,
    });
    const text = summarize([run(4, 2), run(8, 3)], undefined, { fullLayers: 32 });
    expect(text).toContain('memory bandwidth: 4.80 TB/s (NVIDIA H200 (HBM3e), vendor datasheet)');
    // 4 layers: 470 MB at 4.8 TB/s is 0.0979 ms against 2 ms measured.
    expect(text).toMatch(/\| m4 \| 4 \| 470 \| 1000\.0 \| 500\.00 \| 2\.00 \| 235\.0 \| 0\.098 \| 4\.9% \|/);
    // 1 + 0.25 ms per layer: 9 ms at 32 layers, not measured.
    expect(text).toContain('decode ms/token = 1.000 + 0.2500 × layers; at 32 layers 9.00 ms/token (111.1 tok/s, not measured)');
    expect(summarize([{ ...run(4, 2), adapter: 'Some GPU' }], undefined)).toContain('memory bandwidth: unknown for "Some GPU"');
    // Dawn on NVIDIA's Vulkan driver: the description names the driver, the device field the card.
    const nvidia = { ...run(4, 2), adapter: 'NVIDIA: 580.159.03', adapterInfo: { vendor: 'nvidia', architecture: 'hopper', device: 'nvidia-h100-pcie', description: 'NVIDIA: 580.159.03' } };
    expect(summarize([nvidia], undefined)).toContain('memory bandwidth: 2.00 TB/s (NVIDIA H100 PCIe, vendor datasheet)');
  });

  it('lists the kernels that failed their check beside the timed ones', () => {
    const text = summarize([], {
      adapter: { description: 'd', device: 'x' },
      shape: 'llama2-13b',
      kernels: [{ name: 'rmsnorm 5120', msPerDispatch: 0.01, bytes: 1e5, gbps: 10 }],
      failed: [{ name: 'matvec q4 5120x5120 (wq)', what: 'y', where: 'row 3', got: 1, want: 2, tolerance: 0.001 }],
    });
    expect(text).toContain('## Kernels at llama2-13b shapes (bench-kernels)');
    expect(text).toMatch(/\| rmsnorm 5120 \| 0\.0100 \| 10\.0 \|/);
    expect(text).toContain('| matvec q4 5120x5120 (wq) | wrong output, not timed: y at row 3 = 1, expected 2 (tolerance 0.001) | | |');
  });
});

const haveSwiftShader = (await testGpus()).some((g) => g.name === 'swiftshader');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'device-bench-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('scripts/device-bench.sh', () => {
  it('parses (bash -n)', () => {
    expect(spawnSync('bash', ['-n', SCRIPT]).status).toBe(0);
  });

  it('rejects an unknown mode with its usage', () => {
    const r = spawnSync('bash', [SCRIPT, 'bogus'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('usage: scripts/device-bench.sh prepare | run [--dry-run]');
  });

  it.runIf(haveSwiftShader)('prepare packs everything; run --dry-run unpacks it and writes the summary', () => {
    const pack = path.join(tmp, 'pack');
    const env = {
      ...process.env,
      DEVICE_BENCH_PACK: pack,
      DEVICE_BENCH_WORK: path.join(tmp, 'work'),
      OUT: path.join(tmp, 'out'),
      DEVICE_BENCH_OFFLINE: '1',
      DEVICE_BENCH_XZ_LEVEL: '0',
    };
    execFileSync('bash', [SCRIPT, 'prepare'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    for (const f of ['node.xz', 'dawn.node.xz', 'app/dist/cli/bin.js', 'app/node_modules/webgpu/index.js', 'lib/libvulkan.so.1', 'MANIFEST']) {
      expect(existsSync(path.join(pack, f)), f).toBe(true);
    }
    const run = spawnSync('bash', [SCRIPT, 'run', '--dry-run'], {
      env: {
        ...env,
        DEVICE_BENCH_FORCE_CARRIED_LIBS: '1',
        DEVICE_BENCH_SHAPE: 'tiny',
        DEVICE_BENCH_LAYERS: '2',
        DEVICE_BENCH_PROMPT: '8',
        DEVICE_BENCH_GEN: '4',
        DEVICE_BENCH_KERNELS_ONLY: 'rmsnorm',
        DEVICE_BENCH_KERNEL_SECONDS: '0.1',
        DEVICE_BENCH_BANDWIDTH_GBS: '1',
        LLAMA_WEBGPU_ADAPTER: 'swiftshader',
      },
      encoding: 'utf8',
    });
    const log = readFileSync(path.join(tmp, 'out/run.log'), 'utf8');
    expect(run.status, `${log}\n${run.stderr.slice(-3000)}`).toBe(0);
    expect(log).toContain(`unpacking ${pack}`);
    expect(log).toContain('carried libvulkan.so.1');
    const summary = readFileSync(path.join(tmp, 'out/summary.md'), 'utf8');
    expect(summary).toContain('memory bandwidth: 0.00 TB/s (given)');
    expect(summary).toMatch(/\| synthetic tiny \(2 layers\) q4 \| 2 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+% \|/);
    expect(summary).toMatch(/\| synthetic tiny \(5 layers\) q4 \| 5 \|/);
    expect(summary).toMatch(/Fit over 2, 5 layers: .* at 5 layers [\d.]+ ms\/token \([\d.]+ tok\/s; measured [\d.]+\)/);
    // bench-kernels runs at the benched shape (tiny: dim 64).
    expect(summary).toContain('## Kernels at tiny shapes (bench-kernels)');
    expect(summary).toMatch(/\| rmsnorm 64 \| [\d.]+ \| [\d.]+ \| [\d.]+% \|/);
    expect(summary).toContain('dry run');
    if (haveSharedModel('stories260K/stories260K.bin')) {
      expect(summary).toContain('stories260K greedy (Dawn defaults): matches llama2.c [adapter SwiftShader');
      expect(summary).toContain('stories260K greedy (vulkan_enable_f16_on_nvidia): matches llama2.c');
    }
    const encode = JSON.parse(readFileSync(path.join(tmp, 'out/encode.json'), 'utf8'));
    expect(encode.node.usPerCall.allThree).toBeGreaterThan(0);
  });
});
