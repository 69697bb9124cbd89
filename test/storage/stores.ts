/** The two stores under one name, so every contract and install test runs against both. */
import 'fake-indexeddb/auto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createFsStore } from '../../src/storage/fs-store.ts';
import { createIdbStore } from '../../src/storage/idb-store.ts';
import type { ModelStore } from '../../src/storage/store.ts';

export interface TestStore {
  store: ModelStore;
  /** The directory store's folder. */
  root?: string;
  /** The IndexedDB store's database. */
  dbName?: string;
  /** Another store over the same folder or database (as another process or tab opens it). */
  reopen(): ModelStore;
  cleanup(): Promise<void>;
}

let dbCount = 0;

export const STORE_KINDS: [string, () => Promise<TestStore>][] = [
  [
    'fs',
    async () => {
      const root = await mkdtemp(path.join(os.tmpdir(), 'llama-webgpu-store-'));
      return { store: createFsStore(root), root, reopen: () => createFsStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
    },
  ],
  [
    'idb',
    async () => {
      const name = `llama-webgpu-test-${process.pid}-${dbCount++}`;
      return {
        store: createIdbStore(name),
        dbName: name,
        reopen: () => createIdbStore(name),
        cleanup: () =>
          new Promise<void>((resolve) => {
            const req = indexedDB.deleteDatabase(name);
            req.onsuccess = req.onerror = req.onblocked = () => resolve();
          }),
      };
    },
  ],
];
