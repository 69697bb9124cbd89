/** Picking the reader from a set of files, as a browser gets them from a file picker or a drop (no paths). */
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.ts';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { blobSource, memorySource, type ByteSource } from '../../src/formats/source.ts';
import { STORIES_BIN, STORIES_GGUF, STORIES_TOK, writeFlaxFolder, writeHfFolder } from '../helpers/fixtures.ts';
import { haveSharedModel } from '../helpers/models.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'detect-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const picked = (file: string, name = path.basename(file)): ByteSource => blobSource(new Blob([readFileSync(file)]), name);
const folder = (dir: string) => readdirSync(dir).map((f) => picked(path.join(dir, f)));

describe.runIf(haveSharedModel('stories260K/stories260K.bin'))('openCheckpoint on picked files', () => {
  it('tells every format apart from names and first bytes', async () => {
    const hf = path.join(tmp, 'hf');
    writeHfFolder(hf, { shards: 2 });
    const flax = path.join(tmp, 'flax');
    writeFlaxFolder(flax);
    const cases: [ByteSource[], string][] = [
      [[picked(STORIES_GGUF)], 'gguf'],
      [[picked(STORIES_GGUF, 'renamed.bin')], 'gguf'], // by magic, not by name
      [[picked(STORIES_BIN), picked(STORIES_TOK)], 'llama2c'],
      [[picked(STORIES_TOK), picked(STORIES_BIN, 'model.bin')], 'llama2c'],
      [folder(hf), 'safetensors'],
      [folder(flax), 'flax'],
    ];
    for (const [files, format] of cases) {
      const ckpt = await openCheckpoint(files);
      expect(ckpt.format, files.map((f) => f.name).join(', ')).toBe(format);
      expect(ckpt.config.dim).toBe(64);
      expect(ckpt.vocab !== null || ckpt.tokenizerModel !== undefined).toBe(true);
      await ckpt.close();
    }
  });

  it('ambiguous or empty picks and PyTorch pickles are typed errors that say what to pick', async () => {
    const two = openCheckpoint([picked(STORIES_BIN), picked(STORIES_GGUF)]);
    await expect(two).rejects.toThrow(/cannot tell which of .* is the checkpoint/);
    await expect(openCheckpoint([memorySource(new Uint8Array(2), 'config.json')])).rejects.toThrow(ModelFormatError);
    const pt = openCheckpoint([memorySource(new Uint8Array(2), 'config.json'), memorySource(new Uint8Array(8), 'pytorch_model.bin')]);
    await expect(pt).rejects.toThrow(/safetensors/);
  });
});
