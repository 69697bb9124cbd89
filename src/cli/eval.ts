/**
 * llama-webgpu eval <package-dir> --text FILE [--reference <package-dir>] [--context N] [--prefill-chunk N]
 *   [--adapter NAME] [--json]
 *
 * Teacher-forced perplexity of a text under a model package (engine.score(), src/model/score.ts): BOS plus the text's tokens, in
 * windows of the context, every position's logits from batched prefill. With --reference, also the share of
 * positions where the package's most likely next token equals the reference package's (top-1 agreement): the
 * measure of what a quantization loses. --json prints { perplexity, tokens, top1Agreement, referencePerplexity }
 * (the last two null without --reference) on stdout; the adapter and progress go to stderr.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { LlamaWebGpuError } from '../errors.ts';
import type { ScoreResult } from '../engine-types.ts';
import { top1Agreement } from '../model/score.ts';
import { CliError, integerOption, parseArgs, UsageError } from './args.ts';
import { checkPackageDir, describeAdapter, openPackageDir } from './open-model.ts';
import { Progress } from './progress.ts';

export const USAGE =
  'usage: llama-webgpu eval <package-dir> --text FILE [--reference <package-dir>] [--context N] [--prefill-chunk N] [--adapter NAME] [--json]';

interface Scored extends ScoreResult {
  seconds: number;
}

export async function run(args: string[]): Promise<number> {
  let p, contextLength, prefillChunk;
  try {
    p = parseArgs(args, { values: ['text', 'reference', 'context', 'prefill-chunk', 'adapter'], flags: ['json'] });
    if (p.positional.length !== 1) throw new UsageError('expected one <package-dir>');
    if (typeof p.options.get('text') !== 'string') throw new UsageError('--text FILE is required: the text to score');
    contextLength = p.options.has('context') ? integerOption(p, 'context', 0, 2) : undefined;
    prefillChunk = p.options.has('prefill-chunk') ? integerOption(p, 'prefill-chunk', 0, 1) : undefined;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const file = String(p.options.get('text'));
  if (!existsSync(file) || !statSync(file).isFile()) throw new CliError(`--text ${file} does not exist or is not a file; give a UTF-8 text file to score`);
  const text = readFileSync(file, 'utf8');
  const reference = p.options.get('reference');
  checkPackageDir(p.positional[0]);
  if (typeof reference === 'string') checkPackageDir(reference);
  const adapterOption = p.options.get('adapter');
  const progress = new Progress(true);
  const options = { contextLength, prefillChunk, adapter: typeof adapterOption === 'string' ? adapterOption : undefined };

  /** Loads a package, scores the text, and unloads it (one package on the GPU at a time). */
  const score = async (dir: string): Promise<Scored> => {
    progress.update(`loading ${dir}`, true);
    const { engine, adapter } = await openPackageDir(dir, options);
    try {
      progress.update(`adapter ${describeAdapter(adapter)}`, true);
      if (engine.encode(text, false).length < 1) {
        throw new CliError(`--text ${file} tokenizes to BOS alone (1 token); eval needs at least 2 (BOS and one token of text to predict)`);
      }
      const started = performance.now();
      const scores = await engine.score(text, { onProgress: ({ done, total }) => progress.update(`${dir}: scored ${done}/${total} tokens`) });
      progress.done();
      return { ...scores, seconds: (performance.now() - started) / 1000 };
    } finally {
      await engine.unload();
      engine.gpu.destroy();
    }
  };

  try {
    const own = await score(p.positional[0]);
    const ref = typeof reference === 'string' ? await score(reference) : undefined;
    if (ref && (ref.tokens !== own.tokens || ref.tokenIds.some((id, i) => id !== own.tokenIds[i]))) {
      throw new CliError(`${reference} tokenizes the text differently from ${p.positional[0]}; the reference must be a package of the same model (the same tokenizer)`);
    }
    const result = {
      perplexity: own.perplexity,
      tokens: own.tokens,
      top1Agreement: ref ? top1Agreement(own.top1, ref.top1) : null,
      referencePerplexity: ref ? ref.perplexity : null,
    };
    if (p.options.has('json')) {
      console.log(JSON.stringify(result));
    } else {
      console.log(`perplexity ${result.perplexity.toFixed(4)} over ${result.tokens} tokens (${(own.tokens / own.seconds).toFixed(1)} tokens/s)`);
      if (ref) {
        const same = Math.round(result.top1Agreement! * result.tokens);
        console.log(`reference perplexity ${result.referencePerplexity!.toFixed(4)} (${((result.perplexity / result.referencePerplexity! - 1) * 100).toFixed(2)}%)`);
        console.log(`top-1 agreement with the reference ${(100 * result.top1Agreement!).toFixed(2)}% (${same} of ${result.tokens} positions)`);
      }
    }
    return 0;
  } catch (e) {
    progress.done();
    if (e instanceof LlamaWebGpuError) {
      console.error(`eval failed: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
