/**
 * llama-webgpu chat <package-dir> [--script conversation.json] [--no-cache] [--context N] [--max-tokens N]
 *   [--temperature T] [--top-p P] [--seed S] [--system <text>] [--context-overflow drop_oldest|error]
 *   [--adapter NAME] [--json]
 * A conversation through engine.chat's path: each turn sends the whole history (the system message, every user
 * message and the assistant's replies so far), so the KV cache of the previous turn is reused unless --no-cache.
 * With --script, the turns come from a JSON file { "system"?: string, "turns": [user message, ...],
 * "max_tokens"?: N }; without it, each line of stdin is a user message until end of input. Replies go to stdout,
 * per-turn counts (prompt, cached and prefilled tokens, time to first token) to stderr; --json prints one object
 * { turns: [{ prompt_tokens, cached_tokens, prefilled_tokens, ids, text, finish_reason, ... }] } at the end.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Engine, EngineStats } from '../engine.ts';
import { LlamaWebGpuError } from '../errors.ts';
import type { ChatMessage } from '../generate/chat-template.ts';
import { CONTEXT_OVERFLOW_POLICIES, type ContextOverflowPolicy } from '../generate/context.ts';
import { startChatRun } from '../generate/openai.ts';
import { CliError, integerOption, numberOption, parseArgs, UsageError } from './args.ts';
import { describeAdapter, openPackageDir } from './open-model.ts';

export const USAGE =
  'usage: llama-webgpu chat <package-dir> [--script conversation.json] [--no-cache] [--context N] [--max-tokens N] [--temperature T] ' +
  '[--top-p P] [--seed S] [--system <text>] [--context-overflow drop_oldest|error] [--adapter NAME] [--json]';

/** A scripted conversation: the user's messages in order; each reply joins the history before the next one. */
export interface ChatScript {
  system?: string;
  turns: string[];
  max_tokens?: number;
}

export interface TurnReport {
  prompt_tokens: number;
  cached_tokens: number;
  prefilled_tokens: number;
  ids: number[];
  text: string;
  finish_reason: string | null;
  dropped_messages: number;
  time_to_first_token_ms: number;
  context_tokens: number;
  context_length: number;
}

/** Reads and checks a conversation script; every problem names the file and the field. */
export function readChatScript(file: string): ChatScript {
  if (!existsSync(file)) throw new CliError(`--script ${file} does not exist; give a JSON file { "system"?: string, "turns": [user message, ...], "max_tokens"?: N }`);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`--script ${file} is not valid JSON (${(e as Error).message}); fix the file`);
  }
  const bad = (what: string) => new CliError(`--script ${file}: ${what}`);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('must be an object { "system"?: string, "turns": [...], "max_tokens"?: N }');
  const s = data as Record<string, unknown>;
  if (!Array.isArray(s.turns) || s.turns.length === 0 || !s.turns.every((t) => typeof t === 'string')) {
    throw bad('"turns" must be a non-empty array of user messages (strings)');
  }
  if (s.system !== undefined && typeof s.system !== 'string') throw bad('"system" must be a string');
  if (s.max_tokens !== undefined && !(Number.isInteger(s.max_tokens) && (s.max_tokens as number) >= 1)) throw bad(`"max_tokens" must be an integer of at least 1, got ${JSON.stringify(s.max_tokens)}`);
  return { system: s.system as string | undefined, turns: s.turns as string[], max_tokens: s.max_tokens as number | undefined };
}

interface TurnOptions {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed?: number;
  cache: boolean;
  contextOverflow?: ContextOverflowPolicy;
}

/** One turn: the history plus `user` through the chat path; the reply joins the history. */
async function turn(engine: Engine, history: ChatMessage[], user: string, o: TurnOptions, onText: (t: string) => void): Promise<TurnReport> {
  history.push({ role: 'user', content: user });
  const { run } = startChatRun(engine.chat, {
    messages: history,
    max_tokens: o.maxTokens,
    temperature: o.temperature,
    top_p: o.topP,
    seed: o.seed,
    cache: o.cache,
    context_overflow: o.contextOverflow,
  });
  const ids: number[] = [];
  let text = '';
  for await (const d of run) {
    ids.push(...d.tokenIds);
    text += d.text;
    onText(d.text);
  }
  const s: EngineStats = await run.result;
  history.push({ role: 'assistant', content: text });
  return {
    prompt_tokens: s.promptTokens,
    cached_tokens: s.cachedPromptTokens,
    prefilled_tokens: s.prefilledTokens,
    ids,
    text,
    finish_reason: s.finishReason,
    dropped_messages: s.droppedMessages,
    time_to_first_token_ms: s.timeToFirstTokenMs,
    context_tokens: s.contextTokens,
    context_length: s.contextLength,
  };
}

function describeTurn(n: number, r: TurnReport): string {
  const dropped = r.dropped_messages ? `, ${r.dropped_messages} oldest messages dropped` : '';
  return (
    `[turn ${n}: ${r.prompt_tokens} prompt tokens (${r.cached_tokens} cached, ${r.prefilled_tokens} prefilled${dropped}), ` +
    `first token after ${r.time_to_first_token_ms.toFixed(1)} ms, ${r.ids.length} generated (${r.finish_reason}), ` +
    `context ${r.context_tokens}/${r.context_length}]`
  );
}

/** The user's messages: the script's turns, or the lines of stdin as they are typed. */
async function* userMessages(script: ChatScript | undefined, json: boolean): AsyncGenerator<string> {
  if (script) {
    yield* script.turns;
    return;
  }
  const rl = createInterface({ input: process.stdin, terminal: false });
  const ask = () => !json && process.stdin.isTTY && process.stderr.write('> ');
  ask();
  for await (const line of rl) {
    if (line.trim()) yield line;
    ask();
  }
}

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(args, {
    values: ['script', 'context', 'max-tokens', 'temperature', 'top-p', 'seed', 'system', 'context-overflow', 'adapter'],
    flags: ['no-cache', 'json'],
  });
  if (p.positional.length !== 1) throw new UsageError('expected one <package-dir>');
  // Every option is checked here, before a GPU is opened or a model loaded.
  const temperature = numberOption(p, 'temperature', 0.8);
  if (temperature < 0) throw new UsageError(`--temperature must be 0 (greedy) or more, got ${temperature}`);
  const topP = numberOption(p, 'top-p', 0.95);
  if (!(topP > 0 && topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${topP}`);
  const seed = numberOption(p, 'seed');
  if (seed !== undefined && !Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got ${seed}`);
  const contextLength = p.options.has('context') ? integerOption(p, 'context', 0, 1) : undefined;
  const maxTokensOption = p.options.has('max-tokens') ? integerOption(p, 'max-tokens', 0, 1) : undefined;
  const overflow = p.options.get('context-overflow');
  if (overflow !== undefined && !CONTEXT_OVERFLOW_POLICIES.includes(overflow as ContextOverflowPolicy)) {
    throw new UsageError(`--context-overflow must be ${CONTEXT_OVERFLOW_POLICIES.join(' or ')}, got ${String(overflow)}`);
  }
  const scriptFile = p.options.get('script');
  const script = typeof scriptFile === 'string' ? readChatScript(scriptFile) : undefined;
  const json = p.options.has('json');
  const system = p.options.get('system') ?? script?.system;
  const options: TurnOptions = {
    maxTokens: maxTokensOption ?? script?.max_tokens ?? 256,
    temperature,
    topP,
    seed,
    cache: !p.options.has('no-cache'),
    contextOverflow: overflow as ContextOverflowPolicy | undefined,
  };

  const adapterOption = p.options.get('adapter');
  const { engine, adapter } = await openPackageDir(p.positional[0], {
    contextLength,
    adapter: typeof adapterOption === 'string' ? adapterOption : undefined,
  });
  console.error(`[adapter ${describeAdapter(adapter)}]`);
  const history: ChatMessage[] = typeof system === 'string' ? [{ role: 'system', content: system }] : [];
  const turns: TurnReport[] = [];
  try {
    for await (const user of userMessages(script, json)) {
      if (!json && script) process.stdout.write(`> ${user}\n`);
      const r = await turn(engine, history, user, options, (t) => json || process.stdout.write(t));
      if (!json) process.stdout.write('\n');
      console.error(describeTurn(turns.length + 1, r));
      turns.push(r);
    }
    if (json) console.log(JSON.stringify({ turns }));
    return 0;
  } catch (e) {
    // A conversation the context cannot hold (--context-overflow error), or a malformed one: one line, exit 1.
    if (e instanceof LlamaWebGpuError) throw new CliError(`turn ${turns.length + 1}: ${e.message}`);
    throw e;
  } finally {
    await engine.unload();
  }
}
