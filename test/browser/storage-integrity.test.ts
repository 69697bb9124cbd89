// The model store in Chromium, from the built library: two tabs installing one model id from two URLs take turns
// through a Web Lock, and the store holds one whole version; a shard overwritten in IndexedDB (0xff) fails the
// first load after install with ModelIntegrityError (sha256 through crypto.subtle in the engine's worker); and a
// GPU device destroyed during a request ends it with DeviceLostError, the next request reloading the model.
import type { Page } from 'playwright-core';
import { describe, expect, test } from 'vitest';
import { haveChromium, useLibraryServer } from './harness.ts';

type Lib = typeof import('../../src/index.ts');
declare const window: { llama: Lib; llamaReady?: boolean };

/** Every installed file of `id` in IndexedDB `db`, hashed in the page, against the installed manifest. */
function checkInstalled(page: Page, db: string, id: string) {
  return page.evaluate(
    async ([db, id]) => {
      const store = window.llama.createIdbStore(db);
      const m = (await store.getManifest(id))!;
      const hex = async (b: Uint8Array) =>
        Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', b as Uint8Array<ArrayBuffer>)), (x) => x.toString(16).padStart(2, '0')).join('');
      const bad = [];
      for (const s of m.shards) if ((await hex(await store.readShard(id, s.file))) !== s.sha256) bad.push(s.file);
      if ((await hex(await store.readFile(id, m.tokenizer.file))) !== m.tokenizer.sha256) bad.push(m.tokenizer.file);
      return { name: m.name, bad };
    },
    [db, id] as const,
  );
}

describe.skipIf(!haveChromium())('model store integrity in Chromium', () => {
  // Two versions with the same file names: q4 and q8 conversions of one checkpoint.
  const session = useLibraryServer({ v4: { quant: 'q4', name: 'tiny q4' }, v8: { quant: 'q8', name: 'tiny q8' } });

  test('two tabs installing one id from two URLs take turns through a Web Lock; one whole version is installed', async () => {
    const context = await session.browser.newContext();
    const tabs = await Promise.all([context.newPage(), context.newPage()]);
    const errors = (await Promise.all(tabs.map(session.open))).flat();
    const install = (tab: Page, url: string) =>
      tab.evaluate(async (url) => {
        const store = window.llama.createIdbStore('locks-test');
        let first = 0;
        let locks: Promise<LockManagerSnapshot> | null = null;
        const model = await window.llama.installFromUrl(store, url, {
          id: 'm',
          onProgress: (p) => {
            if (p.phase !== 'download' || first) return;
            first = performance.timeOrigin + performance.now();
            locks = navigator.locks.query();
          },
        });
        const snapshot = await locks!;
        return { name: model.name, first, done: performance.timeOrigin + performance.now(), held: snapshot.held!.map((l) => l.name) };
      }, url);
    for (let round = 0; round < 2; round++) {
      // Nothing installed, so both download (an install of the files already installed returns at once).
      await tabs[0].evaluate(() => window.llama.createIdbStore('locks-test').delete('m'));
      const [a, b] = await Promise.all([install(tabs[0], '/pkg/v4/'), install(tabs[1], '/pkg/v8/')]);
      expect(a.held).toContain('llama-webgpu:locks-test:m');
      expect(b.held).toContain('llama-webgpu:locks-test:m');
      // Downloads into the store never overlap: the second starts after the first committed.
      const [early, late] = a.first < b.first ? [a, b] : [b, a];
      expect(late.first).toBeGreaterThanOrEqual(early.done - 5);
      const installed = await checkInstalled(tabs[0], 'locks-test', 'm');
      expect(installed.bad).toEqual([]);
      expect(installed.name).toBe(late.name);
    }
    expect(errors).toEqual([]);
    await context.close();
  }, 300_000);

  test('a shard overwritten with 0xff in IndexedDB fails the first load after install with ModelIntegrityError', async () => {
    const r = await session.evaluate(async () => {
      const lib = window.llama;
      const db = 'integrity-test';
      const store = lib.createIdbStore(db);
      await lib.installFromUrl(store, '/pkg/v4/', { id: 'tiny' });
      // Overwrite the first piece of shard-00000.bin with 0xff, as a damaged disk or another program might.
      const corrupted = await new Promise<string>((resolve, reject) => {
        const open = indexedDB.open(db);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const os = open.result.transaction('shards', 'readwrite').objectStore('shards');
          const keys = os.getAllKeys();
          keys.onsuccess = () => {
            const key = keys.result.map(String).find((k) => k.includes('/piece/shard-00000.bin/0'))!;
            const get = os.get(key);
            get.onsuccess = () => {
              os.put(new Uint8Array((get.result as Uint8Array).byteLength).fill(0xff), key);
              os.transaction.oncomplete = () => resolve(key);
            };
          };
        };
      });
      const attempt = async (options: object) => {
        try {
          const engine = await lib.createWorkerEngine({ model: 'tiny', storeName: db, ...options });
          await engine.unload();
          return null;
        } catch (e) {
          const err = e as Error & { code?: string; modelId?: string; file?: string };
          return { isClass: e instanceof lib.ModelIntegrityError, name: err.name, code: err.code, modelId: err.modelId, file: err.file, message: err.message };
        }
      };
      const firstLoad = await attempt({});
      const unchecked = await attempt({ verify: 'never' });
      // The fix the message gives: delete the model and install it again. Then the first load verifies and passes.
      await store.delete('tiny');
      await lib.installFromUrl(store, '/pkg/v4/', { id: 'tiny' });
      const reinstalled = await attempt({});
      const manifest = (await store.getManifest('tiny'))!;
      return { corrupted, firstLoad, unchecked, reinstalled, verified: await store.isVerified('tiny', manifest) };
    });
    expect(r.corrupted).toMatch(/^tiny\/g\/.*\/piece\/shard-00000.bin\/0$/);
    // The class and its fields survive the worker boundary.
    expect(r.firstLoad).toMatchObject({ isClass: true, name: 'ModelIntegrityError', code: 'MODEL_INTEGRITY', modelId: 'tiny', file: 'shard-00000.bin' });
    expect(r.firstLoad!.message).toMatch(/^model "tiny" shard-00000.bin: the stored file hashes to [0-9a-f]{64}, but the manifest says [0-9a-f]{64}.*Delete the model and install it again/);
    expect(r.unchecked).toBeNull();
    expect(r.reinstalled).toBeNull();
    expect(r.verified).toBe(true);
  }, 300_000);

  test('device.destroy() during a request ends it with DeviceLostError; the next request reloads and generates the same ids', async () => {
    const r = await session.evaluate(async () => {
      const lib = window.llama;
      const store = lib.createIdbStore('loss-test');
      await lib.installFromUrl(store, '/pkg/v4/', { id: 'tiny' });
      const engine = await lib.createEngine({ model: 'tiny', store });
      const greedy = async () => {
        const ids: number[] = [];
        for await (const d of engine.generate([1], { temperature: 0, maxTokens: 8 })) ids.push(...d.tokenIds);
        return ids;
      };
      const before = await greedy();
      const first = engine.gpu;
      let lost = null;
      try {
        let n = 0;
        for await (const _ of engine.generate([1], { temperature: 0, maxTokens: 30 })) if (++n === 2) first.device.destroy();
      } catch (e) {
        const err = e as Error & { code?: string; reason?: string };
        lost = { isClass: e instanceof lib.DeviceLostError, code: err.code, reason: err.reason, message: err.message };
      }
      const after = await greedy();
      const replaced = engine.gpu !== first;
      await engine.unload();
      return { before, lost, after, replaced };
    });
    expect(r.lost).toMatchObject({ isClass: true, code: 'DEVICE_LOST', reason: 'destroyed' });
    expect(r.lost!.message).toMatch(/model "tiny".*Send the request again/);
    expect(r.replaced).toBe(true);
    expect(r.before.length).toBe(8);
    expect(r.after).toEqual(r.before);
  }, 300_000);
});
