/**
 * Conversion loads and checks the tokenizer it writes: a tokenizer that `generate` could not load, or that does not
 * fit the model, fails `convert` with a ModelFormatError naming the tokenizer file and field, and leaves no output.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { ModelFormatError } from '../../src/errors.ts';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint } from '../../src/formats/package-writer.ts';
import { precompiledCharsMap, withCharsMap } from '../helpers/charsmap.ts';
import { ggufBytes, llamaGgufMetadata, STORIES_BIN, STORIES_TOK, TINY_CONFIG, tinyGgufTensors } from '../helpers/fixtures.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';
import { bytesOf } from '../tokenizer/load.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'convert-tokenizer-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function put(name: string, bytes: Uint8Array): string {
  const f = path.join(tmp, name);
  writeFileSync(f, bytes);
  return f;
}

/** Converts `input` into a fresh folder under tmp; returns the error and checks nothing was left there. */
async function convertFails(input: string, tokenizer?: string): Promise<ModelFormatError> {
  const parent = mkdtempSync(path.join(tmp, 'out-'));
  const ckpt = await openCheckpoint(input, { tokenizer });
  const err = await convertCheckpoint(ckpt, await directorySink(path.join(parent, 'pkg')), { quant: 'q8' }).then(() => null, (e: unknown) => e);
  await ckpt.close();
  expect(err).toBeInstanceOf(ModelFormatError);
  expect(readdirSync(parent)).toEqual([]);
  return err as ModelFormatError;
}

/** The byte ranges of each piece of a llama2.c tokenizer.bin. */
function binPieces(bin: Uint8Array): { start: number; len: number }[] {
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const out: { start: number; len: number }[] = [];
  for (let pos = 4; pos < bin.byteLength; pos += 8 + view.getInt32(pos + 4, true)) out.push({ start: pos + 8, len: view.getInt32(pos + 4, true) });
  return out;
}

describe.runIf(haveSharedModel('stories260K/stories260K.bin'))('convert checks the tokenizer it writes', () => {
  const bin = bytesOf(STORIES_TOK);
  const pieces = binPieces(bin);
  /** Piece 300 overwritten with a later piece of the same length: the vocab defines that piece twice. */
  const duplicatedPiece = () => {
    const j = pieces.findIndex((p, k) => k > 300 && p.len === pieces[300].len);
    const dup = bin.slice();
    dup.set(bin.subarray(pieces[j].start, pieces[j].start + pieces[j].len), pieces[300].start);
    return dup;
  };

  it('a tok512.bin with a duplicated piece, or a broken byte piece, fails convert instead of generate', async () => {
    const e1 = await convertFails(STORIES_BIN, put('dup-tok512.bin', duplicatedPiece()));
    expect(e1.file).toBe('dup-tok512.bin');
    expect(e1.message).toMatch(/already defined.*get the model's tokenizer again/);

    // <0x41> becomes <0x4G>: byte fallback then lacks one of its 256 byte pieces.
    const broken = bin.slice();
    broken[pieces[3 + 0x41].start + 4] = 'G'.charCodeAt(0);
    const e2 = await convertFails(STORIES_BIN, put('byte-tok512.bin', broken));
    expect(e2.file).toBe('byte-tok512.bin');
    expect(e2.message).toMatch(/256 byte pieces/);
  });

  it('a tokenizer.model with corrupt normalization rules, or one for another vocab size, is refused', async () => {
    const llama = bytesOf(sharedModel('llama2-tokenizer/tokenizer.model'));
    const rules = precompiledCharsMap({ A: 'a' });
    const bad = rules.slice();
    new DataView(bad.buffer).setUint32(4, 0x7fffff << 10, true); // the root points far outside the trie
    const e1 = await convertFails(STORIES_BIN, put('rules.model', withCharsMap(llama, bad)));
    expect(e1).toMatchObject({ file: 'rules.model', field: 'normalizer_spec.precompiled_charsmap' });

    const e2 = await convertFails(STORIES_BIN, put('llama2.model', llama));
    expect(e2).toMatchObject({ file: 'llama2.model', field: 'vocab_size' });
    expect(e2.message).toMatch(/32000 pieces but the model's embedding has 512 rows; pass the tokenizer that belongs to this model/);
  });

  it('the convert command reports the tokenizer and exits 1, with no output folder', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const out = path.join(tmp, 'cli-out');
    try {
      expect(await main(['convert', STORIES_BIN, out, '--tokenizer', put('cli-tok512.bin', duplicatedPiece())])).toBe(1);
    } finally {
      vi.restoreAllMocks();
    }
    expect(lines.join('\n')).toMatch(/convert failed: cli-tok512\.bin: SentencePiece rejected the vocab/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp).filter((n) => n.startsWith('cli-out'))).toEqual([]);
  });
});

describe('GGUF vocab checks', () => {
  const tensors = tinyGgufTensors();

  async function openFails(name: string, bytes: Uint8Array): Promise<ModelFormatError> {
    const err = await openCheckpoint(put(name, bytes)).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as ModelFormatError).file).toBe(name);
    return err as ModelFormatError;
  }

  it('a token_type outside 1..6 is refused, naming the token', async () => {
    for (const t of [0, 7, -1]) {
      const md = llamaGgufMetadata(TINY_CONFIG);
      md['tokenizer.ggml.token_type'] = [2, 3, 3, 1, t];
      const e = await openFails(`type${t}.gguf`, ggufBytes(md, tensors));
      expect(e.field).toBe('tokenizer.ggml.token_type[4]');
      expect(e.message).toMatch(new RegExp(`token 4 has type ${t}, not a SentencePiece piece type`));
    }
  });

  it('a token that is not valid UTF-8 is refused rather than read as U+FFFD', async () => {
    const bytes = ggufBytes(llamaGgufMetadata(TINY_CONFIG), tensors);
    // Token 3 is "p3", stored as a u64 length 2 and its bytes; 0xff is never valid UTF-8.
    const at = bytes.findIndex((_, i) => bytes[i] === 2 && bytes.subarray(i + 1, i + 8).every((b) => b === 0) && bytes[i + 8] === 0x70 && bytes[i + 9] === 0x33);
    expect(at).toBeGreaterThan(0);
    bytes[at + 8] = 0xff;
    const e = await openFails('utf8.gguf', bytes);
    expect(e.field).toBe('tokenizer.ggml.tokens[3]');
    expect(e.message).toMatch(/token 3 is not valid UTF-8/);
  });

  it('the unmodified hand-built GGUF converts and its vocab loads', async () => {
    const parent = mkdtempSync(path.join(tmp, 'ok-'));
    const ckpt = await openCheckpoint(put('ok.gguf', ggufBytes(llamaGgufMetadata(TINY_CONFIG), tensors)));
    const m = await convertCheckpoint(ckpt, await directorySink(path.join(parent, 'pkg')), { quant: 'f32' });
    await ckpt.close();
    expect(m.tokenizer.file).toBe('tokenizer.model');
    expect(readdirSync(path.join(parent, 'pkg'))).toContain('tokenizer.model');
  });
});

afterEach(() => vi.restoreAllMocks());
