/** Paths to the sample models in ../shared/models, with a loud skip outside CI when they are missing. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SHARED_MODELS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/models');

export function sharedModel(rel: string): string {
  return path.join(SHARED_MODELS, rel);
}

/** True when the sample model exists. In CI a missing sample model is a failure; elsewhere a loud warning. */
export function haveSharedModel(rel: string): boolean {
  const p = sharedModel(rel);
  if (existsSync(p)) return true;
  if (process.env.CI) throw new Error(`sample model ${p} is missing; CI needs ../shared/models`);
  console.warn(`\n!!!!!!!! SKIPPING tests that need ${p}: sample model not found !!!!!!!!\n`);
  return false;
}

/** llama2.c's documented greedy continuation of stories260K from BOS (first ids). */
export const STORIES260K_GREEDY_IDS = [403, 407, 261, 378, 432, 383, 286];
export const STORIES260K_GREEDY_TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';
