/**
 * npm run bench:browser -- <package-dir> [--prompt TEXT | --prompt-tokens N] [--gen-tokens N]
 *   [--adapter swiftshader|lavapipe] [--context N] [--json]
 *
 * `bench` for the browser: the package goes through the page path in headless Chromium (install into IndexedDB,
 * load in the engine's Web Worker, greedy decode; src/cli/browser/bench-run.ts), with install speed, load time and
 * the JavaScript memory the page and the worker hold while loading. --prompt is tokenized with BOS as `generate`
 * does; --prompt-tokens builds `bench`'s deterministic prompt. Runs in Node through scripts/run.mjs (it builds the
 * library with Vite and drives Chromium through playwright-core, both development dependencies).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LlamaWebGpuError } from '../errors.ts';
import { parseManifest } from '../storage/package-check.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { numberOption, parseArgs, UsageError, wantsHelp } from './args.ts';
import { BROWSER_ADAPTERS, type BrowserAdapter } from './browser/chromium.ts';
import { benchInBrowser, describeAdapter } from './browser/bench-run.ts';

const USAGE =
  'usage: npm run bench:browser -- <package-dir> [--prompt TEXT | --prompt-tokens N] [--gen-tokens N] [--adapter swiftshader|lavapipe] [--context N] [--json]';

/** `bench`'s prompt: BOS, then ordinary token ids past the control and byte pieces. */
export function benchPromptIds(bosId: number, vocabSize: number, promptTokens: number): number[] {
  const ids = [bosId];
  for (let i = 1; i < promptTokens; i++) ids.push(259 + ((i * 7919) % Math.max(1, vocabSize - 259)));
  return ids;
}

export async function main(args: string[]): Promise<number> {
  if (wantsHelp(args)) {
    console.log(USAGE);
    return 0;
  }
  let p;
  let adapter: BrowserAdapter;
  try {
    p = parseArgs(args, { values: ['prompt', 'prompt-tokens', 'gen-tokens', 'adapter', 'context'], flags: ['json'] });
    if (p.positional.length !== 1) throw new UsageError('expected one <package-dir>');
    if (p.options.has('prompt') && p.options.has('prompt-tokens')) throw new UsageError('give --prompt or --prompt-tokens, not both');
    adapter = String(p.options.get('adapter') ?? 'swiftshader') as BrowserAdapter;
    if (!BROWSER_ADAPTERS.includes(adapter)) throw new UsageError(`--adapter must be ${BROWSER_ADAPTERS.join(' or ')}, got ${adapter}`);
    numberOption(p, 'prompt-tokens');
    numberOption(p, 'gen-tokens');
    numberOption(p, 'context');
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const dir = path.resolve(p.positional[0]);
  const json = p.options.has('json');
  try {
    const manifestPath = path.join(dir, 'manifest.json');
    let text: string;
    try {
      text = readFileSync(manifestPath, 'utf8');
    } catch {
      throw new LlamaWebGpuError('NOT_A_PACKAGE', `${dir} has no manifest.json. Give a model package folder (from convert or synth).`);
    }
    const manifest = parseManifest(text, manifestPath);
    const c = manifest.config;
    let promptIds: number[];
    if (p.options.has('prompt')) {
      const tokenizer = await Tokenizer.fromModelProto(readFileSync(path.join(dir, manifest.tokenizer.file)), manifest.tokenizer.file);
      promptIds = [c.bosId, ...tokenizer.encode(String(p.options.get('prompt')))];
    } else {
      promptIds = benchPromptIds(c.bosId, c.vocabSize, numberOption(p, 'prompt-tokens', 128));
    }
    const genTokens = numberOption(p, 'gen-tokens', 32);
    const r = await benchInBrowser({
      packageDir: dir,
      adapter,
      promptIds,
      genTokens,
      contextLength: numberOption(p, 'context'),
      onStatus: (line) => process.stderr.write(`[bench:browser] ${line}\n`),
    });
    if (json) {
      console.log(JSON.stringify(r, null, 2));
      return 0;
    }
    console.log(`model ${r.model} in Chromium (${adapter}): ${describeAdapter(r.adapterInfo)}`);
    const rows: [string, string][] = [
      ['install', `${r.installMBps.toFixed(1)} MB/s into IndexedDB (${r.packageMB.toFixed(1)} MB in ${(r.installMs / 1000).toFixed(2)} s)`],
      ['load', `${(r.loadMs / 1000).toFixed(2)} s in the worker (${(r.loadWallMs / 1000).toFixed(2)} s as the page waits)`],
      ['JS heap in load', `peak ${r.peakJsHeapMB.toFixed(1)} MB, baseline ${r.peakJsHeapBaselineMB.toFixed(1)} MB (page + worker; largest shard ${r.shardMB.toFixed(1)} MB, loader held ${r.peakHeldMB.toFixed(1)} MB)`],
      ['prefill', `${r.prefillTokensPerSecond.toFixed(2)} tok/s (${r.promptTokens} tokens)`],
      ['decode', `${r.decodeTokensPerSecond.toFixed(2)} tok/s, ${r.decodeMsPerToken.toFixed(2)} ms/token (${r.generatedTokens} tokens)`],
      ['dispatches/token', String(r.dispatchesPerToken)],
      ['JS encode/token', `${r.encodeMsPerToken.toFixed(3)} ms`],
    ];
    for (const [k, v] of rows) console.log(`  ${k.padEnd(18)} ${v}`);
    console.log(`  ${'text'.padEnd(18)} ${JSON.stringify(r.text)}`);
    return 0;
  } catch (e) {
    if (e instanceof LlamaWebGpuError) {
      console.error(`${e.name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
