/**
 * Dawn's fixed limit notices ("Warning: maxDynamic...artificially reduced...") are kept out of the command line's
 * stderr, and nothing else is: other lines, partial lines and \r progress updates pass through as they arrive.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DAWN_LIMIT_NOTICE, DawnNoticeFilter } from '../../src/cli/dawn-stderr.ts';
import { testGpus } from '../helpers/gpu.ts';

const NOTICE_U = 'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';
const NOTICE_S = 'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';

function filtered(chunks: string[]): { out: string; writes: string[] } {
  const writes: string[] = [];
  const f = new DawnNoticeFilter((t) => writes.push(t));
  for (const c of chunks) f.push(c);
  f.end();
  return { out: writes.join(''), writes };
}

describe('DawnNoticeFilter', () => {
  it('drops both notices, whole or split across chunks, and keeps the lines around them', () => {
    const text = `${NOTICE_U}\nloading 50%\n${NOTICE_S}\nerror: something else\n`;
    expect(filtered([text]).out).toBe('loading 50%\nerror: something else\n');
    // Split at every position: the result is the same.
    for (let i = 1; i < text.length; i += 7) expect(filtered([text.slice(0, i), text.slice(i)]).out).toBe('loading 50%\nerror: something else\n');
  });

  it('keeps warnings that only look alike, and passes progress updates on at once', () => {
    const other = 'Warning: maxDynamicUniformBuffersPerPipelineLayout is 4\n';
    expect(filtered([other]).out).toBe(other);
    expect(filtered([`${NOTICE_U} extra\n`]).out).toBe(`${NOTICE_U} extra\n`);
    expect(DAWN_LIMIT_NOTICE.test(NOTICE_S)).toBe(true);
    // A progress line without a newline is written by the push that brought it, not held until the line ends.
    const { writes } = filtered(['\r\x1b[Kloading 10%', '\r\x1b[Kloading 20%']);
    expect(writes).toEqual(['\r\x1b[Kloading 10%', '\r\x1b[Kloading 20%']);
    // An unfinished line that could still be a notice is held, and written at the end.
    const held: string[] = [];
    const f = new DawnNoticeFilter((t) => held.push(t));
    f.push('Warning: maxDyn');
    expect(held).toEqual([]);
    f.end();
    expect(held).toEqual(['Warning: maxDyn']);
  });
});

const tmp = mkdtempSync(path.join(os.tmpdir(), 'dawn-stderr-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const haveLavapipe = (await testGpus()).some((g) => g.name === 'llvmpipe');

describe.runIf(haveLavapipe)('the CLI runner', () => {
  const cli = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, ['scripts/run.mjs', 'src/cli/main.ts', ...args], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, LLAMA_WEBGPU_ADAPTER: 'llvmpipe', ...env },
    });

  it('generate shows no Dawn limit notice; LLAMA_WEBGPU_DAWN_NOTICES=1 shows them', () => {
    const pkg = path.join(tmp, 'tiny');
    expect(cli(['synth', pkg, '--shape', 'tiny', '--quant', 'q4']).status).toBe(0);
    const args = ['generate', pkg, '--prompt', '', '--temperature', '0', '--max-tokens', '2', '--json'];
    const r = cli(args);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).ids).toHaveLength(2);
    expect(r.stderr).toContain('[adapter ');
    expect(r.stderr).not.toContain('artificially reduced');
    const shown = cli(args, { LLAMA_WEBGPU_DAWN_NOTICES: '1' });
    expect(shown.status).toBe(0);
    expect(shown.stderr).toContain(NOTICE_U);
  });
});
