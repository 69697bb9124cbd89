/** The GGUF header reader on its own: metadata types, vocab arrays, tensor infos, alignment. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { readGguf } from '../../src/formats/gguf.ts';
import { fileSource } from '../../src/formats/node-source.ts';
import { memorySource } from '../../src/formats/source.ts';
import { encodeDense, ggufBytes, llamaGgufMetadata, STORIES_GGUF } from '../helpers/fixtures.ts';
import { haveSharedModel, sharedModel } from '../helpers/models.ts';

describe('readGguf', () => {
  it.runIf(haveSharedModel('llama2-tokenizer/ggml-vocab-llama-spm.gguf'))('reads the vocab-only Llama 2 GGUF', async () => {
    const src = await fileSource(sharedModel('llama2-tokenizer/ggml-vocab-llama-spm.gguf'));
    const g = await readGguf(src);
    await src.close();
    expect(g.version).toBe(3);
    expect(g.tensors).toEqual([]);
    const tokens = g.metadata.get('tokenizer.ggml.tokens') as string[];
    expect(tokens).toHaveLength(32000);
    expect(tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(tokens[30143]).toBe('\ufeff'); // a piece that is exactly U+FEFF survives decoding
    expect((g.metadata.get('tokenizer.ggml.scores') as number[])[1000]).toBeTypeOf('number');
    expect(g.metadata.get('tokenizer.ggml.add_bos_token')).toBe(true);
    expect(g.metadata.get('llama.embedding_length')).toBe(4096);
    expect(g.metadata.get('general.architecture')).toBe('llama');
  });

  it.runIf(haveSharedModel('stories260K/stories260Ktok512.gguf'))('lists stories260K tensors in ggml order at aligned offsets', async () => {
    const g = await readGguf(memorySource(new Uint8Array(readFileSync(STORIES_GGUF)), 's.gguf'));
    expect(g.tensors).toHaveLength(48);
    expect(g.dataOffset % 32).toBe(0);
    const emb = g.tensors.find((t) => t.name === 'token_embd.weight')!;
    expect(emb).toMatchObject({ shape: [64, 512], ggmlType: 0, offset: 0, byteSize: 512 * 64 * 4 });
    expect(g.tensors.every((t) => t.offset % g.alignment === 0)).toBe(true);
  });

  it('honours general.alignment', async () => {
    const c = { dim: 8, hiddenDim: 16, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 3, maxSeqLen: 8, normEps: 1e-5, ropeTheta: 1e4, ropeScale: 1, bosId: 1, eosId: 2, chatTemplate: 'none' as const };
    const vals = (n: number) => Float32Array.from({ length: n }, (_, i) => i / 7);
    const t = (name: string, shape: number[]) => ({ name, shape, ggmlType: 0, data: encodeDense(vals(shape.reduce((a, b) => a * b, 1)), 'F32') });
    const tensors = [
      t('token_embd.weight', [8, 3]), t('blk.0.attn_norm.weight', [8]), t('blk.0.attn_q.weight', [8, 8]), t('blk.0.attn_k.weight', [8, 8]),
      t('blk.0.attn_v.weight', [8, 8]), t('blk.0.attn_output.weight', [8, 8]), t('blk.0.ffn_norm.weight', [8]), t('blk.0.ffn_gate.weight', [8, 16]),
      t('blk.0.ffn_down.weight', [16, 8]), t('blk.0.ffn_up.weight', [8, 16]), t('output_norm.weight', [8]),
    ];
    const bytes = ggufBytes({ ...llamaGgufMetadata(c), 'general.alignment': 256 }, tensors);
    const g = await readGguf(memorySource(bytes, 'a.gguf'));
    expect(g.alignment).toBe(256);
    expect(g.dataOffset % 256).toBe(0);
    expect(g.tensors[1].offset).toBe(256);
    const ckpt = await openCheckpoint(memorySource(bytes, 'a.gguf'));
    expect(await ckpt.tensors.get('layers.0.w1')!.readRows(0, 16)).toEqual(vals(128));
  });
});
