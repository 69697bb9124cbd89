/**
 * llama-webgpu generate <package-dir> --prompt <text> [--max-tokens N] [--temperature T] [--top-p P] [--top-k K]
 *   [--seed S] [--chat] [--system <text>] [--adapter llvmpipe|swiftshader|default] [--json-schema FILE] [--json]
 * Temperature 0 is greedy. --json-schema FILE constrains the output to compact JSON matching the schema in FILE. With --json, prints one object: prompt_ids (with BOS), ids, text, timings. The adapter
 * in use and why it was chosen go to stderr, so stdout holds only the text or the JSON.
 */
import { readFileSync } from 'node:fs';
import { JsonSchemaError } from '../errors.ts';
import { compileJsonSchema, type JsonSchema } from '../generate/json-schema.ts';
import { CliError, integerOption, numberOption, parseArgs, UsageError } from './args.ts';
import { describeAdapter, openPackageDir } from './open-model.ts';

export const USAGE = 'usage: llama-webgpu generate <package-dir> --prompt <text> [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--chat] [--system <text>] [--context N] [--adapter NAME] [--json-schema FILE] [--json]';

export async function run(args: string[]): Promise<number> {
  let p, sampling, contextLength;
  try {
    p = parseArgs(args, { values: ['prompt', 'max-tokens', 'temperature', 'top-p', 'top-k', 'seed', 'system', 'context', 'adapter', 'json-schema'], flags: ['chat', 'json'] });
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
  const schemaFile = p.options.get('json-schema');
  const jsonSchema = typeof schemaFile === 'string' ? readJsonSchema(schemaFile) : undefined;
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
    const stream = engine.generate(promptIds, { ...sampling, jsonSchema });
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
      if (stats.warning) console.error(`[${stats.warning}]`);
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

/** The JSON schema in `file`, checked before a GPU is opened (a keyword it cannot enforce is named). */
function readJsonSchema(file: string): JsonSchema {
  let schema: JsonSchema;
  try {
    schema = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `is not valid JSON (${(e as Error).message})`;
    throw new CliError(`--json-schema ${file} ${why}; give a file holding a JSON schema`);
  }
  try {
    compileJsonSchema(schema);
  } catch (e) {
    if (e instanceof JsonSchemaError) throw new CliError(`--json-schema ${file}: ${e.message}`);
    throw e;
  }
  return schema;
}
