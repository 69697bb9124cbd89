// WorkerEngine and engine-worker.ts in one Node process, joined by a stand-in Worker that structured-clones each
// message and delivers it as a later task (as postMessage does), over fake-indexeddb: the worker engine's tokenize,
// detokenize, tokenizeChat and score give what an Engine on the same adapter gives, its errors keep their class
// across the boundary, and a score aborted from the page stops in the worker. The worker opens the test adapter
// through a stand-in navigator.gpu.
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEngine } from '../../src/engine.ts';
import { EngineUnloadedError, InvalidOptionsError, WorkerEngineTerminatedError } from '../../src/errors.ts';
import { nodeAdapter, type NodeAdapterName } from '../../src/gpu/node.ts';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { createIdbStore } from '../../src/storage/idb-store.ts';
import { installFromUrl } from '../../src/storage/install.ts';
import { createWorkerEngine, type WorkerEngine } from '../../src/worker/client.ts';
import { convertedPackage, packagesRoot, removePackagesRoot } from '../helpers/convert.ts';
import { testGpus } from '../helpers/gpu.ts';
import { haveSharedModel, sharedModel, STORIES260K_GREEDY_IDS } from '../helpers/models.ts';
import { startRangeServer, type RangeServer } from '../helpers/range-server.ts';

const gpus = await testGpus();
const have = haveSharedModel('stories260K/stories260K.bin');
const ID = 'stories-bin-f32';
const STORE = 'engine-worker-test';
const TEXT = 'Tom had a small red boat. He liked to sail it on the pond near his house. One day, the wind was very strong.';

/** The adapter the worker's navigator.gpu hands out. */
let adapterName: NodeAdapterName = 'llvmpipe';
/** The worker module's global scope, and the one stand-in worker talking to it at a time. */
const scope = { postMessage: (data: unknown) => deliver(() => current?.onmessage?.({ data: structuredClone(data) })), onmessage: null as ((ev: { data: unknown }) => void) | null };
let current: InProcessWorker | null = null;
const deliver = (f: () => void) => void setTimeout(f, 0);

class InProcessWorker {
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor() {
    current = this;
  }
  postMessage(msg: unknown): void {
    const data = structuredClone(msg);
    deliver(() => scope.onmessage?.({ data }));
  }
  terminate(): void {}
}

describe.skipIf(!have)('the worker engine in one Node process', () => {
  let server: RangeServer;
  beforeAll(async () => {
    await convertedPackage(ID, sharedModel('stories260K/stories260K.bin'), 'f32', sharedModel('stories260K/tok512.bin'));
    server = await startRangeServer({ '/pkg/': packagesRoot() });
    await installFromUrl(createIdbStore(STORE), `${server.url}/pkg/${ID}/`);
    vi.stubGlobal('self', scope);
    vi.stubGlobal('navigator', { gpu: { requestAdapter: () => nodeAdapter(adapterName) } });
    await import('../../src/worker/engine-worker.ts');
  });
  afterAll(async () => {
    vi.unstubAllGlobals();
    await server?.close();
    await removePackagesRoot();
  });

  describe.each(gpus)('on $name', ({ name, gpu }) => {
    let engine: WorkerEngine;
    beforeAll(async () => {
      adapterName = name;
      engine = await createWorkerEngine({ model: ID, storeName: STORE, worker: new InProcessWorker() as unknown as Worker });
    });

    it('tokenize, detokenize, tokenizeChat and score give what an Engine gives; a generate after score is still greedy', async () => {
      const local = await createEngine({ model: ID, store: createFsStore(packagesRoot()), gpu });
      try {
        const ids = await engine.tokenize(TEXT);
        expect(ids).toEqual(local.encode(TEXT));
        expect(await engine.tokenize(TEXT, { addBos: false })).toEqual(local.encode(TEXT, false));
        expect(await engine.detokenize(ids)).toBe(TEXT);
        const messages = [{ role: 'user' as const, content: 'Tell a story.' }];
        expect(await engine.tokenizeChat(messages)).toEqual(local.encodeChat(messages));
        const progress: number[] = [];
        const got = await engine.score(TEXT, { onProgress: (p) => progress.push(p.done) });
        const want = await local.score(TEXT);
        expect(got.tokenIds).toEqual(want.tokenIds);
        expect(Math.abs(got.perplexity / want.perplexity - 1)).toBeLessThanOrEqual(1e-6);
        expect(progress.at(-1)).toBe(got.tokens);
        const after: number[] = [];
        for await (const d of engine.generate([1], { temperature: 0, maxTokens: 10 })) after.push(...d.tokenIds);
        expect(after.slice(0, STORIES260K_GREEDY_IDS.length)).toEqual(STORIES260K_GREEDY_IDS);
      } finally {
        await local.unload();
      }
    });

    it('errors keep their class across the boundary, and an abort from the page stops a score in the worker', async () => {
      await expect(engine.detokenize([1, 512])).rejects.toSatisfy((e) => e instanceof InvalidOptionsError && (e as InvalidOptionsError).option === 'ids[1]');
      await expect(engine.tokenizeChat([{ role: 'bot' as 'user', content: 'x' }])).rejects.toThrow(InvalidOptionsError);
      await expect(engine.score('')).rejects.toThrow(/^text: tokenizes to no tokens/);
      // A text of several prefill chunks, aborted when the first chunk's progress reaches the page.
      const controller = new AbortController();
      const long = Array(12).fill(TEXT).join(' ');
      const progress: number[] = [];
      const run = engine.score(long, { signal: controller.signal, onProgress: (p) => (progress.push(p.done), controller.abort()) });
      await expect(run).rejects.toMatchObject({ name: 'AbortError' });
      expect(progress.length).toBeGreaterThan(0);
      console.log(`score aborted on ${name} after ${progress.at(-1)} tokens`);
      expect(progress.at(-1)).toBeLessThan((await engine.tokenize(long, { addBos: false })).length);
    });

    it('after unload every call is refused', async () => {
      await engine.unload();
      for (const call of [() => engine.tokenize('x'), () => engine.detokenize([1]), () => engine.tokenizeChat([]), () => engine.score('x')]) {
        await expect(call()).rejects.toThrow(WorkerEngineTerminatedError);
      }
      await expect(engine.score('x')).rejects.toBeInstanceOf(EngineUnloadedError);
    });
  });
});

