// A Llama 2 7B-wide model (dim 4096, hidden 11008, 32 heads, vocab 32000) with 2 layers and random q4 weights,
// converted straight into the IndexedDB store (fake-indexeddb in Node) with 32 MB shards, so the embedding and
// classifier (73 MB each) are split into row chunks across buffers. It loads through the streaming loader with
// at most two shards held in JavaScript memory, and decodes deterministically.
// Runs on lavapipe only: SwiftShader takes minutes per token at this width, and the kernels at these shapes
// are checked on both adapters in test/kernels/.
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine.ts';
import { convertCheckpoint } from '../../src/formats/package-writer.ts';
import { synthCheckpoint } from '../../src/model/synthetic.ts';
import { createIdbStore } from '../../src/storage/idb-store.ts';
import { testGpus } from '../helpers/gpu.ts';

const SHARD = 32 * 1024 * 1024;
const lavapipe = (await testGpus()).filter((g) => g.name === 'llvmpipe');

describe.each(lavapipe)('Llama 2 7B-wide, 2 layers, q4, through IndexedDB on $name', ({ gpu }) => {
  it('converts into the store, streams onto the GPU with bounded memory, and decodes', async () => {
    const store = createIdbStore('llama-webgpu-7b-test');
    const manifest = await convertCheckpoint(synthCheckpoint('llama2-7b', 2), store.sink('synth-7b-2l'), { quant: 'q4', shardBytes: SHARD });
    expect(manifest.shards.length).toBeGreaterThan(5);
    const embedding = manifest.tensors.find((t) => t.name === 'tokenEmbedding')!;
    expect(embedding.chunks.length).toBeGreaterThan(1);

    let peakHeld = 0;
    const engine = await createEngine({
      model: 'synth-7b-2l',
      store,
      gpu,
      contextLength: 256,
      onProgress: (p) => (peakHeld = Math.max(peakHeld, p.peakHeldBytes)),
    });
    try {
      expect(peakHeld).toBeGreaterThan(0);
      expect(peakHeld).toBeLessThanOrEqual(2 * SHARD);
      expect(engine.model.tensors.get('tokenEmbedding')!.chunks.length).toBe(embedding.chunks.length);
      const prompt = [1, 500, 1000, 2000];
      const runA = engine.generate(prompt, { temperature: 0, maxTokens: 3, stopTokenIds: [] });
      const a: number[] = [];
      for await (const d of runA) a.push(...d.tokenIds);
      const b: number[] = [];
      for await (const d of engine.generate(prompt, { temperature: 0, maxTokens: 3, stopTokenIds: [] })) b.push(...d.tokenIds);
      expect(a.length).toBe(3);
      expect(a).toEqual(b);
      for (const id of a) expect(id).toBeGreaterThanOrEqual(0), expect(id).toBeLessThan(32000);
      const logits = await gpu.readF32(engine.model.state.logits);
      expect(logits.every(Number.isFinite)).toBe(true);
      console.log(`7B-wide 2-layer q4: ${manifest.shards.length} shards, peak held ${(peakHeld / 2 ** 20).toFixed(0)} MiB, ` +
        `load ${(engine.stats().loadMs / 1000).toFixed(1)} s, decode ${(await runA.result).decodeTokensPerSecond.toFixed(2)} tok/s`);
    } finally {
      await engine.unload();
      await store.delete('synth-7b-2l');
    }
  }, 600_000);
});
