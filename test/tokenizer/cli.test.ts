/** `llama-webgpu tokenize`: ids of a text as a JSON array, from every kind of tokenizer file or a package dir. */
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/tokenize.ts';
import { LLAMA2_BIN, LLAMA2_GGUF, LLAMA2_MODEL, STORIES_BIN, STORIES_GGUF } from './load.ts';

async function tokenize(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const code = await run(args);
  return { code, out, err };
}

afterEach(() => vi.restoreAllMocks());

describe('tokenize command', () => {
  it('prints the ids of "Hello world" from tokenizer.model, tokenizer.bin, the GGUF and the package dir', async () => {
    for (const file of [LLAMA2_MODEL, LLAMA2_BIN, LLAMA2_GGUF, path.dirname(LLAMA2_MODEL)]) {
      expect(await tokenize(file, 'Hello world')).toEqual({ code: 0, out: ['[15043,3186]'], err: [] });
    }
  });

  it('reads the stories260K vocab from tok512.bin and from the model GGUF alike', async () => {
    const a = await tokenize(STORIES_BIN, 'Once upon a time, there was a little girl');
    const b = await tokenize(STORIES_GGUF, 'Once upon a time, there was a little girl');
    expect(a.code).toBe(0);
    expect(JSON.parse(a.out[0]).length).toBeGreaterThan(5);
    expect(b).toEqual(a);
  });

  it('takes the text verbatim and reports usage errors with status 2', async () => {
    expect((await tokenize(LLAMA2_MODEL, '--verbose')).code).toBe(0);
    const r = await tokenize(LLAMA2_MODEL);
    expect(r.code).toBe(2);
    expect(r.err.join('\n')).toMatch(/usage: llama-webgpu tokenize/);
  });
});
