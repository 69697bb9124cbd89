/**
 * `llama-webgpu bench` and `generate` on a small synthetic package: the adapter and the reason it was chosen are
 * reported (bench: summary and JSON; generate: stderr only, so --json stays parseable), progress goes to stderr, and
 * the per-dispatch encode time is the per-token encode time spread over the dispatches. SwiftShader compiles
 * pipelines in about a second, so the run stays short.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { testGpus } from '../helpers/gpu.ts';
import { captureOutput } from '../helpers/console.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-cli-'));
const pkg = path.join(tmp, 'tiny-q4');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const { stdout, stderr } = captureOutput({ stdout: true, stderr: true });

const haveSwiftShader = (await testGpus()).some((g) => g.name === 'swiftshader');

describe.runIf(haveSwiftShader)('bench and generate report their adapter', () => {
  beforeAll(async () => {
    expect(await main(['synth', pkg, '--shape', 'tiny', '--quant', 'q4'])).toBe(0);
  });

  it('bench --verify never loads without hashing; the default first-load hashes once and marks the package verified', async () => {
    const marker = path.join(pkg, '.verified');
    const bench = async (...extra: string[]) => {
      stdout.length = 0;
      expect(await main(['bench', pkg, '--adapter', 'swiftshader', '--prompt-tokens', '2', '--gen-tokens', '2', '--json', '--quiet', ...extra])).toBe(0);
      return JSON.parse(stdout.join('\n')).verify;
    };
    expect(await bench('--verify', 'never')).toBe('never');
    expect(existsSync(marker)).toBe(false);
    expect(await bench()).toBe('first-load');
    expect(existsSync(marker)).toBe(true);
    expect(await bench('--verify', 'always')).toBe('always');
  });

  it('bench --json: adapter, reason, and encode µs per dispatch; progress on stderr', async () => {
    expect(await main(['bench', pkg, '--adapter', 'swiftshader', '--prompt-tokens', '8', '--gen-tokens', '6', '--json'])).toBe(0);
    const r = JSON.parse(stdout.join('\n'));
    expect(r).toMatchObject({ adapterKind: 'swiftshader', adapterReason: 'set by --adapter', shaderF16: false, generatedTokens: 6 });
    expect(r.adapter).toMatch(/swiftshader/i);
    expect(r.dispatchesPerToken).toBeGreaterThan(10);
    expect(r.encodeMsPerToken).toBeGreaterThan(0);
    expect(r.encodeUsPerDispatch).toBeCloseTo((r.encodeMsPerToken * 1000) / r.dispatchesPerToken, 9);
    expect(r.weightBytesPerToken).toBeGreaterThan(0);
    expect(r.weightBytesPerToken).toBeLessThanOrEqual(r.weightBytes);
    const progress = stderr.join('');
    expect(progress).toContain('loading 100%');
    expect(progress).toContain('warm-up');
    expect(progress).toContain('decode token 6/6');
  });

  it('bench summary names the adapter chosen by LLAMA_WEBGPU_ADAPTER; --quiet prints no progress', async () => {
    vi.stubEnv('LLAMA_WEBGPU_ADAPTER', 'swiftshader');
    try {
      expect(await main(['bench', pkg, '--prompt-tokens', '4', '--gen-tokens', '3', '--quiet'])).toBe(0);
    } finally {
      vi.unstubAllEnvs();
    }
    const text = stdout.join('\n');
    expect(text).toMatch(/adapter +swiftshader: set by LLAMA_WEBGPU_ADAPTER/);
    expect(text).toMatch(/JS encode\/dispatch +\d+\.\d\d µs/);
    expect(stderr.join('')).not.toContain('decode token');
  });

  it('generate --json keeps stdout to one JSON object and names the adapter on stderr', async () => {
    expect(await main(['generate', pkg, '--prompt', '', '--temperature', '0', '--max-tokens', '3', '--json', '--adapter', 'swiftshader'])).toBe(0);
    expect(JSON.parse(stdout.join('')).ids).toHaveLength(3);
    expect(stderr.join('\n')).toMatch(/\[adapter SwiftShader.*\[swiftshader, no shader-f16\]: set by --adapter\]/);
  });

  it('an unknown adapter name is a typed error naming the valid ones', async () => {
    await expect(main(['bench', pkg, '--adapter', 'nvidia'])).rejects.toThrow(/Use one of: default, llvmpipe, swiftshader/);
  });
});

describe('bench --verify', () => {
  it('takes first-load, always or never, and refuses anything else before a GPU opens', async () => {
    expect(await main(['bench', path.join(tmp, 'nowhere'), '--verify', 'sometimes'])).toBe(2);
    expect(stderr.join('')).toContain('--verify must be one of first-load, always, never, got sometimes');
    expect(stderr.join('')).toContain('[--verify first-load|always|never]');
  });
});

const haveChromium = existsSync(process.env.LLAMA_WEBGPU_CHROMIUM ?? '/usr/bin/chromium');
if (!haveChromium && process.env.CI) throw new Error('Chromium is missing (run scripts/setup-system.sh); CI runs bench-encode --browser.');

describe.runIf(haveSwiftShader)('bench-encode', () => {
  it('reports µs per call of each encoding method, in Node and in Chromium', async () => {
    const args = ['bench-encode', '--adapter', 'swiftshader', '--dispatches', '500', '--rounds', '2', '--json'];
    expect(await main(haveChromium ? [...args, '--browser'] : args)).toBe(0);
    const r = JSON.parse(stdout.join('\n'));
    for (const run of haveChromium ? [r.node, r.chromium] : [r.node]) {
      expect(run.dispatches).toBe(500);
      expect(run.adapter).toMatch(/swiftshader/i);
      const { setPipeline, setBindGroup, dispatchWorkgroups, allThree } = run.usPerCall;
      // Timings on a shared machine are noise-prone, so only their presence and sign are asserted, never
      // their order: JIT warm-up can make one method's average briefly cheaper than another's.
      for (const us of [setPipeline, setBindGroup, dispatchWorkgroups, allThree]) {
        expect(Number.isFinite(us)).toBe(true);
        expect(us).toBeGreaterThan(0);
      }
      expect(run.msPerPass.gpuWait).toBeGreaterThan(0);
    }
    expect(r.node.adapterReason).toBe('set by --adapter');
  });
});
