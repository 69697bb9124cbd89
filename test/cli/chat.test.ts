/**
 * `llama-webgpu chat` on stories260K, on each test adapter: a scripted conversation prints one JSON object whose
 * turns reuse the previous turn's KV cache (and give the replies of a --no-cache run), --context sets the cache
 * length, a malformed script is one line and exit 1, and without --script each line of stdin is a turn.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { TurnReport } from '../../src/cli/chat.ts';
import { convertedPackage, packagesRoot, removePackagesRoot } from '../helpers/convert.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';
import { captureOutput } from '../helpers/console.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'chat-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterAll(removePackagesRoot);
const have = haveSharedModel('stories260K/stories260K.bin');
const gpus = await testGpus();
const ID = 'stories-chat-cli';

const { stdout, stderr } = captureOutput({ stdout: true });

function script(name: string, body: unknown): string {
  const file = path.join(tmp, name);
  writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
  return file;
}

const CONVERSATION = { system: 'You tell short stories.', turns: ['Tell me about a cat.', 'What did it eat?', 'Where did it sleep?'], max_tokens: 8 };

describe.skipIf(!have)('chat', () => {
  let pkg: string;
  beforeAll(async () => {
    await convertedPackage(ID, sharedModel('stories260K/stories260K.bin'), 'f32', sharedModel('stories260K/tok512.bin'));
    pkg = path.join(packagesRoot(), ID);
  });

  describe.each(gpus)('on $name', ({ name }) => {
    async function chat(...extra: string[]): Promise<TurnReport[]> {
      stdout.length = 0;
      stderr.length = 0;
      const file = script('conversation.json', CONVERSATION);
      expect(await main(['chat', pkg, '--script', file, '--temperature', '0', '--adapter', name, '--json', ...extra])).toBe(0);
      return (JSON.parse(stdout.join('\n')) as { turns: TurnReport[] }).turns;
    }

    it('--script --json: each turn reuses the last one, with the replies of --no-cache', async () => {
      const warm = await chat();
      const cold = await chat('--no-cache');
      expect(warm.length).toBe(3);
      expect(warm.map((t) => t.ids)).toEqual(cold.map((t) => t.ids));
      expect(warm.map((t) => t.text)).toEqual(cold.map((t) => t.text));
      for (const [i, t] of warm.entries()) {
        expect(Object.keys(t)).toEqual(expect.arrayContaining(['prompt_tokens', 'cached_tokens', 'prefilled_tokens', 'ids', 'text', 'finish_reason']));
        expect(t.prompt_tokens).toBe(cold[i].prompt_tokens);
        expect(t.cached_tokens + t.prefilled_tokens).toBe(t.prompt_tokens);
        expect(cold[i].cached_tokens).toBe(0);
        expect(t.ids.length).toBeLessThanOrEqual(8);
        expect(['stop', 'length']).toContain(t.finish_reason);
        if (i > 0) expect(t.cached_tokens).toBeGreaterThanOrEqual(warm[i - 1].prompt_tokens);
      }
      expect(warm[0].context_length).toBe(512);
      // One line per turn on stderr with the counts (of the last run, --no-cache).
      expect(stderr.filter((l) => l.startsWith('[turn ')).length).toBe(3);
      expect(stderr.join('\n')).toMatch(/\[turn 3: \d+ prompt tokens \(0 cached, \d+ prefilled\), first token after [\d.]+ ms/);
    }, 300_000);

    it('--context N sets the KV cache length', async () => {
      const turns = await chat('--context', '100');
      expect(turns.every((t) => t.context_length === 100)).toBe(true);
      expect(turns.some((t) => t.dropped_messages > 0)).toBe(true);
    }, 300_000);
  });

  it('a malformed script is one line on stderr and exit 1', async () => {
    const cases: [unknown, string][] = [
      ['{ not json', 'is not valid JSON'],
      [{ turns: [] }, '"turns" must be a non-empty array of user messages'],
      [{ turns: ['hi'], max_tokens: 0 }, '"max_tokens" must be an integer of at least 1, got 0'],
      [{ turns: ['hi'], system: 3 }, '"system" must be a string'],
    ];
    for (const [body, message] of cases) {
      stderr.length = 0;
      const file = script('bad.json', body);
      expect(await main(['chat', pkg, '--script', file])).toBe(1);
      expect(stderr.length).toBe(1);
      expect(stderr[0]).toMatch(new RegExp(`^--script ${file}:? `));
      expect(stderr[0]).toContain(message);
    }
    stderr.length = 0;
    expect(await main(['chat', pkg, '--script', path.join(tmp, 'none.json')])).toBe(1);
    expect(stderr.join('\n')).toContain('none.json does not exist');
  });

  it('without --script, each line of stdin is a user message', () => {
    const r = spawnSync(process.execPath, ['scripts/run.mjs', 'src/cli/main.ts', 'chat', pkg, '--temperature', '0', '--max-tokens', '4', '--json'], {
      input: 'Tell me about a dog.\n\nWhat did it do?\n',
      encoding: 'utf8',
      timeout: 240_000,
    });
    expect(r.status).toBe(0);
    const { turns } = JSON.parse(r.stdout) as { turns: TurnReport[] };
    expect(turns.length).toBe(2);
    expect(turns[1].cached_tokens).toBeGreaterThanOrEqual(turns[0].prompt_tokens);
  }, 300_000);
});
