/**
 * llama-webgpu info <package-dir | checkpoint> [--verify]: the config, tensor count and bytes by dtype of a model
 * package (its manifest, validated) or of any checkpoint convert accepts. --verify also checks every package file's
 * size and sha256 against the manifest.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LlamaWebGpuError, ModelFormatError } from '../errors.ts';
import type { Checkpoint } from '../formats/checkpoint.ts';
import { openCheckpoint } from '../formats/detect.ts';
import { GGML_TYPES } from '../formats/gguf.ts';
import { bytesAgainstQ4, describeMatrixDtypes } from '../formats/quant-plan.ts';
import type { Manifest } from '../formats/manifest.ts';
import { validateManifest } from '../formats/validate.ts';
import type { ModelConfig } from '../model/config.ts';
import { parseArgs, UsageError } from './args.ts';

export const USAGE = 'usage: llama-webgpu info <package-dir | checkpoint> [--tokenizer <file>] [--verify]';

/** Every shard and the tokenizer have the manifest's size and sha256. */
async function verifyFiles(dir: string, m: Manifest): Promise<void> {
  for (const f of [...m.shards, m.tokenizer]) {
    const file = path.join(dir, f.file);
    const size = (await stat(file).catch(() => null))?.size;
    if (size !== f.byteSize) {
      throw new ModelFormatError(file, size === undefined ? 'is missing; convert or download the model again' : `is ${size} bytes, the manifest says ${f.byteSize}; convert or download the model again`);
    }
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    if (hash.digest('hex') !== f.sha256) throw new ModelFormatError(file, 'sha256 does not match the manifest; the file is corrupt, convert or download the model again');
  }
}

/** Bytes by dtype of a package: data and scales of every chunk. */
export function packageBytesByDtype(m: Manifest): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of m.tensors) {
    const n = t.chunks.reduce((a, c) => a + c.data.byteLength + (c.scales?.byteLength ?? 0), 0);
    out.set(t.dtype, (out.get(t.dtype) ?? 0) + n);
  }
  return out;
}

/** Bytes by source dtype of a checkpoint, from shapes and each type's storage size. */
export function checkpointBytesByDtype(ckpt: Checkpoint): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of ckpt.tensors.values()) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    const ggml = Object.values(GGML_TYPES).find((g) => g.name === t.sourceDtype);
    const bytes = ggml ? (elements / ggml.blockSize) * ggml.blockBytes : elements * (t.sourceDtype === 'F32' ? 4 : 2);
    out.set(t.sourceDtype, (out.get(t.sourceDtype) ?? 0) + bytes);
  }
  return out;
}

function printConfig(c: ModelConfig) {
  for (const [k, v] of Object.entries(c)) console.log(`  ${k.padEnd(12)} ${v}`);
}

/** The encoding of each role's matrices and, when they differ, what the mix costs over every matrix at q4. */
function printMix(m: Manifest) {
  const lines = describeMatrixDtypes(m.tensors);
  console.log('matrices:');
  for (const line of lines) console.log(`  ${line}`);
  if (new Set(m.tensors.filter((t) => t.shape.length === 2).map((t) => t.dtype)).size > 1) {
    const { bytes, q4 } = bytesAgainstQ4(m.tensors);
    const sign = bytes >= q4 ? '+' : '-';
    console.log(`  ${sign}${Math.abs(bytes - q4).toLocaleString('en-US')} bytes (${sign}${((100 * Math.abs(bytes - q4)) / q4).toFixed(1)}%) against every matrix at q4`);
  }
}

function printBytes(m: Map<string, number>) {
  for (const [k, v] of [...m].sort()) console.log(`  ${k.padEnd(6)} ${v.toLocaleString('en-US')} bytes`);
}

export async function run(args: string[]): Promise<number> {
  let p;
  try {
    p = parseArgs(args, { values: ['tokenizer'], flags: ['verify'] });
    if (p.positional.length !== 1) throw new UsageError('expected one <package-dir | checkpoint>');
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const input = p.positional[0];
  const tokenizer = p.options.get('tokenizer');
  try {
    const manifestPath = path.join(input, 'manifest.json');
    if (existsSync(manifestPath)) {
      let json: unknown;
      try {
        json = JSON.parse(await readFile(manifestPath, 'utf8'));
      } catch (err) {
        throw new ModelFormatError(manifestPath, `is not valid JSON (${(err as Error).message}); convert the model again`);
      }
      const m = validateManifest(json, manifestPath);
      console.log(`package ${m.name}${m.source ? ` (from ${Object.values(m.source).join(', ')})` : ''}`);
      printConfig(m.config);
      console.log(`tensors: ${m.tensors.length}${m.sharedClassifier ? ' (classifier shared with the embedding)' : ''}; shards: ${m.shards.length}`);
      printBytes(packageBytesByDtype(m));
      printMix(m);
      if (p.options.has('verify')) {
        await verifyFiles(input, m);
        console.log(`verified ${m.shards.length} shards and ${m.tokenizer.file}`);
      }
      return 0;
    }
    const ckpt = await openCheckpoint(input, { tokenizer: typeof tokenizer === 'string' ? tokenizer : undefined });
    try {
      console.log(`${ckpt.format} checkpoint ${ckpt.file ?? input}`);
      printConfig(ckpt.config);
      console.log(`tensors: ${ckpt.tensors.size}${ckpt.tensors.has('wcls') ? '' : ' (classifier shared with the embedding)'}`);
      printBytes(checkpointBytesByDtype(ckpt));
      return 0;
    } finally {
      await ckpt.close();
    }
  } catch (e) {
    if (e instanceof LlamaWebGpuError) {
      console.error(`info failed: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
