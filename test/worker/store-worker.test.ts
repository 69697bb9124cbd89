// The store worker's conversions take every quant `convert --quant` takes (CONVERT_QUANTS): StoreWorkerClient and
// store-worker.ts run in one Node process, joined by a stand-in Worker, over fake-indexeddb and a local Range server.
import 'fake-indexeddb/auto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { ConvertOptionsError } from '../../src/errors.ts';
import { f32ToF16Bits } from '../../src/formats/f16.ts';
import { CONVERT_QUANTS, type ConvertQuant } from '../../src/formats/quant-plan.ts';
import { createIdbStore } from '../../src/storage/idb-store.ts';
import type { ToStoreWorker } from '../../src/worker/store-protocol.ts';
import { StoreWorkerClient } from '../../src/worker/store-client.ts';
import { ggufBytes, llamaGgufMetadata, TINY_CONFIG, tinyGgufTensors } from '../helpers/fixtures.ts';
import { startRangeServer, type RangeServer } from '../helpers/range-server.ts';

/** TINY_CONFIG's F32 GGUF with wq as Q8_0 blocks (scale 1/64, quants -16..15), so that `keep` has blocks to keep. */
function ggufWithQ8Wq(): Uint8Array<ArrayBuffer> {
  const tensors = tinyGgufTensors().map((t) => {
    if (t.name !== 'blk.0.attn_q.weight') return t;
    const blocks = (32 * 32) / 32;
    const data = new Uint8Array(blocks * 34);
    const view = new DataView(data.buffer);
    for (let b = 0; b < blocks; b++) {
      view.setUint16(b * 34, f32ToF16Bits(1 / 64), true);
      for (let i = 0; i < 32; i++) view.setInt8(b * 34 + 2 + i, ((b * 7 + i) % 32) - 16);
    }
    return { ...t, ggmlType: 8, data };
  });
  return new Uint8Array(ggufBytes(llamaGgufMetadata(TINY_CONFIG), tensors));
}

/** The messages the page posted, and the store worker's module answering them in this process (one client, so one worker). */
const posted: ToStoreWorker[] = [];

class InProcessWorker {
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  private scope = { postMessage: (data: unknown) => this.onmessage?.({ data }), onmessage: null as ((ev: { data: unknown }) => void) | null };
  private ready: Promise<void>;

  constructor() {
    vi.stubGlobal('self', this.scope);
    this.ready = import('../../src/worker/store-worker.ts').then(() => undefined);
  }

  postMessage(msg: ToStoreWorker): void {
    posted.push(msg);
    void this.ready.then(() => this.scope.onmessage?.({ data: msg }));
  }

  terminate(): void {}
}

/** Each matrix's encoding in the stored package of `id`, and the quant the manifest records. */
async function stored(storeName: string, id: string): Promise<{ quant: string | undefined; wq: string; w1: string; wv: string }> {
  const m = (await createIdbStore(storeName).getManifest(id))!;
  const dtype = (name: string) => m.tensors.find((t) => t.name === name)!.dtype;
  return { quant: m.source?.quant, wq: dtype('layers.0.wq'), w1: dtype('layers.0.w1'), wv: dtype('layers.0.wv') };
}

/** What each quant makes of the GGUF: q4 is the mix (wv at q8 in a layer moreBitsLayer picks), keep keeps wq's Q8_0. */
const EXPECTED: Record<ConvertQuant, { wq: string; w1: string; wv: string }> = {
  q4: { wq: 'q4', w1: 'q4', wv: 'q8' },
  'q4-pure': { wq: 'q4', w1: 'q4', wv: 'q4' },
  q8: { wq: 'q8', w1: 'q8', wv: 'q8' },
  f16: { wq: 'f16', w1: 'f16', wv: 'f16' },
  f32: { wq: 'f32', w1: 'f32', wv: 'f32' },
  keep: { wq: 'q8', w1: 'f32', wv: 'f32' },
};

describe('store worker quant names', () => {
  let work: string;
  let server: RangeServer;
  const gguf = ggufWithQ8Wq();
  const client = new StoreWorkerClient();

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-store-worker-'));
    writeFileSync(path.join(work, 'tiny.gguf'), gguf);
    server = await startRangeServer({ '/files/': work });
    vi.stubGlobal('Worker', InProcessWorker);
    vi.stubGlobal('location', { href: server.url });
  });

  afterAll(async () => {
    vi.unstubAllGlobals();
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the list is the one convert takes', () => {
    expect(CONVERT_QUANTS).toEqual(['q4', 'q4-pure', 'q8', 'f16', 'f32', 'keep']);
  });

  test.each(CONVERT_QUANTS)('convertFiles and importFromUrl with quant %s convert as convert --quant does', async (quant) => {
    const storeName = `store-worker-${quant}`;
    const file = new File([gguf], 'tiny.gguf');
    expect(await client.convertFiles([file], { storeName, modelId: 'dropped', quant })).toBe('dropped');
    expect(await client.importFromUrl('/files/tiny.gguf', { storeName, modelId: 'imported', quant })).toBe('imported');
    expect(posted.slice(-2).map((m) => 'quant' in m && m.quant)).toEqual([quant, quant]);
    for (const id of ['dropped', 'imported']) expect(await stored(storeName, id), id).toEqual({ quant, ...EXPECTED[quant] });
  });

  test('without a quant a GGUF with quantized tensors keeps them, as convert does', async () => {
    await client.convertFiles([new File([gguf], 'tiny.gguf')], { storeName: 'store-worker-auto', modelId: 'auto' });
    expect(await stored('store-worker-auto', 'auto')).toEqual({ quant: 'keep', ...EXPECTED.keep });
  });

  test('another name is refused on the page with ConvertOptionsError listing the names, before the worker sees it', async () => {
    const before = posted.length;
    for (const run of [
      () => client.convertFiles([new File([gguf], 'tiny.gguf')], { quant: 'q4_k_m' as ConvertQuant }),
      () => client.importFromUrl('/files/tiny.gguf', { quant: 'Q8' as ConvertQuant }),
    ]) {
      const e = await run().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ConvertOptionsError);
      expect((e as Error).message).toMatch(/^unknown quant "(q4_k_m|Q8)"; use one of q4, q4-pure, q8, f16, f32, keep$/);
    }
    expect(posted.length).toBe(before);
  });
});
