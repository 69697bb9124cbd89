/** Converts sample checkpoints into package directories for end-to-end tests (one temp folder per process). */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openCheckpoint } from '../../src/formats/detect.ts';
import { directorySink } from '../../src/formats/node-sink.ts';
import { convertCheckpoint, type ConvertOptions } from '../../src/formats/package-writer.ts';
import type { WeightDtype } from '../../src/formats/quant.ts';
import type { Checkpoint } from '../../src/formats/checkpoint.ts';

let root: string | undefined;
export function packagesRoot(): string {
  root ??= mkdtempSync(path.join(os.tmpdir(), 'llama-webgpu-e2e-'));
  return root;
}

const done = new Map<string, Promise<string>>();

/** Removes this process's converted packages (call from afterAll of every file that converts). */
export async function removePackagesRoot(): Promise<void> {
  await Promise.allSettled(done.values());
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
  done.clear();
}

/** Converts `input` (with an optional tokenizer) at `quant` into <root>/<id>; returns the id. Cached per id. */
export function convertedPackage(id: string, input: string | (() => Checkpoint), quant: ConvertOptions['quant'], tokenizer?: string): Promise<string> {
  let p = done.get(id);
  if (!p) {
    p = (async () => {
      const ckpt = typeof input === 'string' ? await openCheckpoint(input, { tokenizer }) : input();
      try {
        await convertCheckpoint(ckpt, await directorySink(path.join(packagesRoot(), id)), { quant, name: id });
      } finally {
        await ckpt.close();
      }
      return id;
    })();
    done.set(id, p);
  }
  return p;
}
