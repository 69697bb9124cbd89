/**
 * `llama-webgpu eval` on stories260K packages written by `convert`, on each test adapter: --json and text output,
 * the reference's figures, and bad input (usage errors exit 2 before a GPU is opened; a missing or too short
 * text, or a reference of another tokenizer, exit 1 with one line). Also what `info` shows of the q4 mix.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { STORIES_BIN, STORIES_TOK } from '../helpers/fixtures.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cli-eval-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const adapters = (await testGpus()).map((g) => g.name);
const have = haveSharedModel('stories260K/stories260K.bin') && haveSharedModel('random/llama-2-tiny-random.gguf');

let stdout: string[];
let stderr: string[];
beforeEach(() => {
  stdout = [];
  stderr = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void stdout.push(a.map(String).join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void stderr.push(a.map(String).join(' ')));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

const STORY =
  'Tom had a small red boat. He liked to sail it on the pond near his house. One day, the wind was very strong ' +
  'and the boat went far away. Tom was sad.';

describe.runIf(have)('eval', () => {
  const pkg = (q: string) => path.join(tmp, `stories-${q}`);
  const text = path.join(tmp, 'story.txt');

  beforeAll(async () => {
    vi.spyOn(console, 'log').mockImplementation(() => {});
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    for (const q of ['f32', 'q4']) expect(await main(['convert', STORIES_BIN, pkg(q), '--quant', q, '--tokenizer', STORIES_TOK])).toBe(0);
    expect(await main(['convert', sharedModel('random/llama-2-tiny-random.gguf'), pkg('other-vocab'), '--quant', 'f32'])).toBe(0);
    writeFileSync(text, STORY);
    writeFileSync(path.join(tmp, 'empty.txt'), '');
    vi.restoreAllMocks();
  });

  it('info shows the q4 mix and what it costs over every matrix at q4', async () => {
    expect(await main(['info', pkg('q4')])).toBe(0);
    const out = stdout.join('\n');
    expect(out).toContain('matrices:\n  tokenEmbedding: q8\n  wq, wk, wo, w1, w3: q4\n  wv, w2: q8 in layers 0, 3, 4; q4 in layers 1, 2');
    expect(out).toMatch(/\+37,888 bytes \(\+24\.9%\) against every matrix at q4/);
  });

  it.each(adapters)('--json on %s: perplexity, tokens, top-1 agreement and the reference perplexity', async (adapter) => {
    expect(await main(['eval', pkg('q4'), '--text', text, '--reference', pkg('f32'), '--json', '--adapter', adapter])).toBe(0);
    expect(stdout).toHaveLength(1);
    const r = JSON.parse(stdout[0]);
    expect(Object.keys(r)).toEqual(['perplexity', 'tokens', 'top1Agreement', 'referencePerplexity']);
    expect(r.tokens).toBe(64);
    expect(r.perplexity).not.toBe(r.referencePerplexity);
    expect(Math.abs(r.perplexity / r.referencePerplexity - 1)).toBeLessThan(0.1);
    expect(r.top1Agreement * 64).toBeCloseTo(Math.round(r.top1Agreement * 64), 9);
    expect(r.top1Agreement).toBeGreaterThan(0.8);
  }, 600_000);

  it('without --reference: null agreement; against itself: the same perplexity and full agreement, in text', async () => {
    expect(await main(['eval', pkg('f32'), '--text', text, '--json', '--adapter', adapters[0]])).toBe(0);
    expect(JSON.parse(stdout.join(''))).toEqual({ perplexity: expect.any(Number), tokens: 64, top1Agreement: null, referencePerplexity: null });
    stdout = [];
    expect(await main(['eval', pkg('q4'), '--text', text, '--reference', pkg('q4'), '--adapter', adapters[0], '--context', '20'])).toBe(0);
    expect(stdout.join('\n')).toMatch(
      /^perplexity \d+\.\d{4} over 64 tokens \([\d.]+ tokens\/s\)\nreference perplexity \d+\.\d{4} \(0\.00%\)\ntop-1 agreement with the reference 100\.00% \(64 of 64 positions\)$/,
    );
  }, 600_000);

  it('bad input: exit 1 with one line for a missing or too short text and a reference of another tokenizer', async () => {
    expect(await main(['eval', pkg('q4'), '--text', path.join(tmp, 'nowhere.txt')])).toBe(1);
    expect(stderr.join('\n')).toMatch(/^--text .*nowhere\.txt does not exist or is not a file; give a UTF-8 text file to score$/);
    stderr = [];
    expect(await main(['eval', pkg('q4'), '--text', text, '--reference', path.join(tmp, 'no-such-pkg')])).toBe(1);
    expect(stderr.join('\n')).toMatch(/^.*no-such-pkg does not exist; give the folder of a model package/);
    stderr = [];
    expect(await main(['eval', pkg('q4'), '--text', path.join(tmp, 'empty.txt'), '--adapter', adapters[0]])).toBe(1);
    expect(stderr.join('\n')).toContain('empty.txt tokenizes to BOS alone (1 token); eval needs at least 2');
    stderr = [];
    expect(await main(['eval', pkg('q4'), '--text', text, '--reference', pkg('other-vocab'), '--adapter', adapters[0]])).toBe(1);
    expect(stderr.join('\n')).toContain('tokenizes the text differently');
    expect(stdout).toEqual([]);
  });
});

describe('eval usage errors exit 2 before a GPU is opened', () => {
  it.each([
    [['eval'], 'expected one <package-dir>'],
    [['eval', 'pkg'], '--text FILE is required'],
    [['eval', 'pkg', '--text', 'x', '--context', '1'], '--context must be an integer of at least 2, got 1'],
    [['eval', 'pkg', '--text', 'x', '--prefill-chunk', '0'], '--prefill-chunk must be an integer of at least 1, got 0'],
    [['eval', 'pkg', '--text', 'x', '--bogus'], 'unknown option --bogus'],
  ])('%j', async (args, message) => {
    expect(await main(args)).toBe(2);
    expect(stderr.join('\n')).toContain(message);
    expect(stderr.join('\n')).toContain('usage: llama-webgpu eval');
  });

  it('convert and synth name the valid --quant schemes', async () => {
    expect(await main(['convert', 'in.gguf', path.join(tmp, 'never'), '--quant', 'q4_0'])).toBe(2);
    expect(stderr.join('\n')).toMatch(/--quant must be one of q4, q4-pure, q8, f16, f32(, [\w-]+)*, got q4_0/);
    stderr = [];
    expect(await main(['synth', path.join(tmp, 'never'), '--shape', 'tiny', '--quant', 'int4'])).toBe(2);
    expect(stderr.join('\n')).toMatch(/--quant must be one of q4, q4-pure, q8, f16, f32(, [\w-]+)*, got int4/);
  });
});
