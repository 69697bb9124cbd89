/**
 * The command line's usage handling: --help on every command prints its usage and exits 0, an unknown command is
 * named, bad numbers are refused with a message before a GPU is opened (exit 2), and a missing package folder is
 * a one-line message with exit 1, never a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main as benchBrowser } from '../../src/cli/bench-browser.ts';
import { main } from '../../src/cli/main.ts';
import { captureOutput } from '../helpers/console.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cli-usage-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const { stdout, stderr } = captureOutput();

const COMMANDS = ['generate', 'chat', 'bench', 'convert', 'info', 'eval', 'tokenize', 'synth', 'bench-kernels', 'bench-summary', 'bench-encode'];
const STACK_LINE = /^\s+at /m;

describe('--help', () => {
  it.each(COMMANDS)('%s --help prints its usage on stdout and exits 0', async (name) => {
    expect(await main([name, '--help'])).toBe(0);
    expect(stdout.join('\n')).toContain(`usage: llama-webgpu ${name}`);
    expect(stderr).toEqual([]);
  });

  it('bench:browser --help prints its usage and exits 0', async () => {
    expect(await benchBrowser(['--help'])).toBe(0);
    expect(stdout.join('\n')).toContain('usage: npm run bench:browser');
  });

  it('-h after other arguments asks for usage too; bare --help lists every command', async () => {
    expect(await main(['generate', 'some/pkg', '-h'])).toBe(0);
    expect(stdout.join('\n')).toContain('--max-tokens N');
    stdout.length = 0;
    expect(await main(['--help'])).toBe(0);
    for (const name of COMMANDS) expect(stdout.join('\n')).toContain(`  ${name}`);
  });
});

describe('usage errors exit 2 with a message', () => {
  it('an unknown command is named', async () => {
    expect(await main(['frobnicate', 'x'])).toBe(2);
    expect(stderr[0]).toBe('unknown command "frobnicate"');
    expect(stderr.join('\n')).toContain('generate');
    expect(stdout).toEqual([]);
  });

  it.each([
    [['--temperature', 'abc'], '--temperature must be a number, got abc'],
    [['--max-tokens', '-5'], '--max-tokens must be an integer of at least 1, got -5'],
    [['--max-tokens', '2.5'], '--max-tokens must be an integer of at least 1, got 2.5'],
    [['--temperature', '-1'], '--temperature must be 0 (greedy) or more, got -1'],
    [['--top-p', '0'], '--top-p must be in (0, 1], got 0'],
  ])('generate %j is refused before the package is opened', async (opts, message) => {
    // The package folder does not exist: the options are checked first.
    expect(await main(['generate', path.join(tmp, 'none'), '--prompt', 'x', ...opts])).toBe(2);
    const text = stderr.join('\n');
    expect(text).toContain(message);
    expect(text).toContain('usage: llama-webgpu generate');
    expect(text).not.toMatch(STACK_LINE);
  });

  it.each([
    [['--context', '0'], '--context must be an integer of at least 1, got 0'],
    [['--temperature', '-1'], '--temperature must be 0 (greedy) or more, got -1'],
    [['--seed', '1.5'], '--seed must be an integer, got 1.5'],
    [['--context-overflow', 'shift'], '--context-overflow must be drop_oldest or error, got shift'],
    [['--cache'], 'unknown option --cache'],
  ])('chat %j is refused before the package or script is opened', async (opts, message) => {
    expect(await main(['chat', path.join(tmp, 'none'), '--script', path.join(tmp, 'none.json'), ...opts])).toBe(2);
    const text = stderr.join('\n');
    expect(text).toContain(message);
    expect(text).toContain('usage: llama-webgpu chat');
    expect(text).not.toMatch(STACK_LINE);
  });

  it('bench refuses a token count that is not a positive integer', async () => {
    expect(await main(['bench', path.join(tmp, 'none'), '--gen-tokens', '-5'])).toBe(2);
    expect(stderr.join('\n')).toContain('--gen-tokens must be an integer of at least 1, got -5');
  });
});

describe('a missing package folder exits 1 with a message', () => {
  it('generate and bench name the folder that does not exist, or that holds no manifest.json', async () => {
    const missing = path.join(tmp, 'missing-pkg');
    const empty = path.join(tmp, 'empty');
    mkdirSync(empty);
    for (const cmd of [['generate', missing, '--prompt', 'x'], ['bench', missing, '--quiet']]) {
      stderr.length = 0;
      expect(await main(cmd)).toBe(1);
      expect(stderr.join('\n')).toBe(`${missing} does not exist; give the folder of a model package (\`llama-webgpu convert\` writes one)`);
    }
    stderr.length = 0;
    expect(await main(['generate', empty, '--prompt', 'x'])).toBe(1);
    expect(stderr.join('\n')).toContain(`${empty} is not a model package (it has no manifest.json)`);
    expect(await main(['info', missing])).toBe(1);
  });

  it('generate --json-schema names a missing file, a file that is not JSON, and an unsupported keyword, before a GPU opens', async () => {
    const missing = path.join(tmp, 'missing-pkg');
    const notJson = path.join(tmp, 'schema.txt');
    const unsupported = path.join(tmp, 'schema.json');
    writeFileSync(notJson, '{ type: object }');
    writeFileSync(unsupported, JSON.stringify({ type: 'object', properties: { when: { type: 'string', format: 'date' } } }));
    const cases: [string, string][] = [
      [path.join(tmp, 'nope.json'), 'nope.json does not exist; give a file holding a JSON schema'],
      [notJson, 'schema.txt is not valid JSON'],
      [unsupported, 'JSON schema at #/properties/when: "format" is not supported'],
    ];
    for (const [file, message] of cases) {
      stderr.length = 0;
      expect(await main(['generate', missing, '--prompt', 'x', '--json-schema', file])).toBe(1);
      expect(stderr.join('\n')).toContain(message);
    }
  });

  it('through the CLI runner: one message on stderr, no stack trace, exit 1', () => {
    const r = spawnSync(process.execPath, ['scripts/run.mjs', 'src/cli/main.ts', 'generate', path.join(tmp, 'nowhere'), '--prompt', 'x'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('nowhere does not exist');
    expect(r.stderr).not.toMatch(STACK_LINE);
    expect(r.stdout).toBe('');
  });
});
