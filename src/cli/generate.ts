/**
 * llama-webgpu generate <package-dir> --prompt <text> [--max-tokens N] [--temperature T] [--top-p P] [--top-k K]
 *   [--seed S] [--chat] [--system <text>] [--adapter llvmpipe|swiftshader|default] [--json]
 * Temperature 0 is greedy. With --json, prints one object: prompt_ids (with BOS), ids, text, timings. The adapter
 * in use and why it was chosen go to stderr, so stdout holds only the text or the JSON.
 */
import { integerOption, numberOption, parseArgs, UsageError } from './args.ts';
import { describeAdapter, openPackageDir } from './open-model.ts';

export const USAGE = 'usage: llama-webgpu generate <package-dir> --prompt <text> [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--chat] [--system <text>] [--context N] [--adapter NAME] [--json]';

export async function run(args: string[]): Promise<number> {
  let p, sampling, contextLength;
  try {
    p = parseArgs(args, { values: ['prompt', 'max-tokens', 'temperature', 'top-p', 'top-k', 'seed', 'system', 'context', 'adapter'], flags: ['chat', 'json'] });
    if (p.positional.length !== 1) throw new UsageError('expected one <package-dir>');
    // Every number is checked here, before a GPU is opened or a model loaded.
    sampling = {
      maxTokens: integerOption(p, 'max-tokens', 256, 1),
      temperature: numberOption(p, 'temperature', 0.8),
      topP: numberOption(p, 'top-p', 0.95),
      topK: integerOption(p, 'top-k', 0, 0),
      seed: numberOption(p, 'seed'),
    };
    if (sampling.temperature < 0) throw new UsageError(`--temperature must be 0 (greedy) or more, got ${sampling.temperature}`);
    if (!(sampling.topP > 0 && sampling.topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${sampling.topP}`);
    contextLength = p.options.has('context') ? integerOption(p, 'context', 0, 1) : undefined;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const prompt = String(p.options.get('prompt') ?? '');
  const json = p.options.has('json');
  const adapterOption = p.options.get('adapter');
  const { engine, adapter } = await openPackageDir(p.positional[0], {
    contextLength,
    adapter: typeof adapterOption === 'string' ? adapterOption : undefined,
  });
  console.error(`[adapter ${describeAdapter(adapter)}]`);
  try {
    const promptIds = p.options.has('chat')
      ? engine.encodeChat([
          ...(p.options.has('system') ? [{ role: 'system' as const, content: String(p.options.get('system')) }] : []),
          { role: 'user' as const, content: prompt },
        ])
      : engine.encode(prompt);
    const stream = engine.generate(promptIds, sampling);
    const ids: number[] = [];
    let text = '';
    if (!json) process.stdout.write(prompt);
    for await (const d of stream) {
      ids.push(...d.tokenIds);
      text += d.text;
      if (!json) process.stdout.write(d.text);
    }
    const stats = await stream.result;
    if (json) {
      console.log(JSON.stringify({ prompt_ids: promptIds, ids, text, finish_reason: stats.finishReason, timings: stats }));
    } else {
      process.stdout.write('\n');
      console.error(
        `[${stats.promptTokens} prompt tokens at ${stats.prefillTokensPerSecond.toFixed(1)} tok/s, ` +
          `${stats.generatedTokens} generated at ${stats.decodeTokensPerSecond.toFixed(1)} tok/s, load ${stats.loadMs.toFixed(0)} ms]`,
      );
    }
    return 0;
  } finally {
    await engine.unload();
  }
}
