/**
 * Checks of the public API's arguments (createEngine options, generate options and prompts, chat completion
 * requests), done once where a call enters the library. Each failure is an InvalidOptionsError naming the option
 * as the caller spelled it and saying what is valid.
 */
import { InvalidOptionsError } from '../errors.ts';
import type { ChatMessage } from './chat-template.ts';
import { CONTEXT_OVERFLOW_POLICIES, type ContextOverflowPolicy } from './context.ts';
import type { GenerateIdsOptions } from './generate.ts';
import { compileJsonSchema, type JsonSchema } from './json-schema.ts';

/** The options generate() accepts, before normalization (`stop` may be one string). */
export interface RawGenerateOptions extends GenerateIdsOptions {
  /** Checked by compiling it (a JsonSchemaError names a keyword it cannot enforce). */
  jsonSchema?: JsonSchema;
  stop?: string | string[];
  addBos?: boolean;
  continuation?: boolean;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'function') return 'a function';
  return String(v);
}

function fail(option: string, expected: string, got: unknown): never {
  throw new InvalidOptionsError(option, `must be ${expected}, got ${show(got)}.`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function positiveInt(option: string, v: unknown): void {
  if (v !== undefined && !(Number.isInteger(v) && (v as number) > 0)) fail(option, 'a positive integer', v);
}

function finite(option: string, v: unknown, expected = 'a finite number'): void {
  if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v))) fail(option, expected, v);
}

function tokenId(option: string, v: unknown, vocabSize?: number): void {
  const ok = Number.isInteger(v) && (v as number) >= 0 && (vocabSize === undefined || (v as number) < vocabSize);
  if (!ok) fail(option, `a token id, an integer in 0..${vocabSize === undefined ? 'vocabSize - 1' : vocabSize - 1}`, v);
}

/** createEngine (`withStore`: it needs a model store) and createWorkerEngine load options. */
export function validateLoadOptions(o: unknown, withStore: boolean): void {
  if (!isObject(o)) fail('options', withStore ? 'an object with at least { model, store }' : 'an object with at least { model }', o);
  if (typeof o.model !== 'string' || o.model === '') fail('model', 'the id of an installed model (a non-empty string)', o.model);
  if (withStore && !(isObject(o.store) && typeof o.store.getManifest === 'function')) fail('store', 'a model store (createIdbStore() or createFsStore())', o.store);
  positiveInt('contextLength', o.contextLength);
  positiveInt('prefillChunk', o.prefillChunk);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') fail('onProgress', 'a function', o.onProgress);
  if (o.verify !== undefined && !['first-load', 'always', 'never'].includes(o.verify as string)) fail('verify', "'first-load', 'always' or 'never'", o.verify);
}

/** A generate() prompt: text, or token ids (including BOS) within the vocabulary when its size is known. */
export function validatePrompt(prompt: unknown, vocabSize?: number): asserts prompt is string | number[] {
  if (typeof prompt === 'string') return;
  if (!Array.isArray(prompt)) fail('prompt', 'a string or an array of token ids', prompt);
  prompt.forEach((id, i) => tokenId(`prompt[${i}]`, id, vocabSize));
}

/** Option names as a chat completion request spells them. */
export const CHAT_OPTION_NAMES: Partial<Record<keyof RawGenerateOptions, string>> = {
  topP: 'top_p', topK: 'top_k', minP: 'min_p', maxTokens: 'max_tokens', frequencyPenalty: 'frequency_penalty',
  presencePenalty: 'presence_penalty', repetitionPenalty: 'repetition_penalty', logitBias: 'logit_bias',
  jsonSchema: 'response_format',
};

/**
 * Checks generate options and returns them with `stop` as a list. Token ids are checked against `vocabSize` when
 * it is given. `names` maps option names to the caller's spelling (CHAT_OPTION_NAMES for chat requests).
 */
export function validateGenerateOptions<T extends RawGenerateOptions>(
  o: T | undefined,
  vocabSize?: number,
  names: Partial<Record<keyof RawGenerateOptions, string>> = {},
): Omit<T, 'stop'> & { stop?: string[] } {
  if (o === undefined) return {} as Omit<T, 'stop'>;
  if (!isObject(o)) fail('options', 'an object', o);
  const n = (k: keyof RawGenerateOptions) => names[k] ?? k;
  finite(n('temperature'), o.temperature, 'a finite number >= 0 (0 = greedy)');
  if (o.temperature !== undefined && o.temperature < 0) fail(n('temperature'), 'a finite number >= 0 (0 = greedy)', o.temperature);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) fail(n('topK'), 'an integer >= 0 (0 = off)', o.topK);
  if (o.topP !== undefined && !(typeof o.topP === 'number' && o.topP > 0 && o.topP <= 1)) fail(n('topP'), 'a number in (0, 1] (1 = off)', o.topP);
  if (o.minP !== undefined && !(typeof o.minP === 'number' && o.minP >= 0 && o.minP < 1)) fail(n('minP'), 'a number in [0, 1) (0 = off)', o.minP);
  finite(n('repetitionPenalty'), o.repetitionPenalty, 'a finite number > 0 (1 = off)');
  if (o.repetitionPenalty !== undefined && o.repetitionPenalty <= 0) fail(n('repetitionPenalty'), 'a finite number > 0 (1 = off)', o.repetitionPenalty);
  finite(n('frequencyPenalty'), o.frequencyPenalty);
  finite(n('presencePenalty'), o.presencePenalty);
  if (o.seed !== undefined && !Number.isInteger(o.seed)) fail(n('seed'), 'an integer', o.seed);
  if (o.maxTokens !== undefined && !((Number.isInteger(o.maxTokens) && o.maxTokens >= 0) || o.maxTokens === Infinity)) {
    fail(n('maxTokens'), 'an integer >= 0 (or Infinity: up to the end of the context)', o.maxTokens);
  }
  if (o.logitBias !== undefined) {
    if (!isObject(o.logitBias)) fail(n('logitBias'), 'an object mapping token ids to numbers', o.logitBias);
    for (const [k, v] of Object.entries(o.logitBias)) {
      tokenId(`${n('logitBias')} key`, k.trim() === '' ? NaN : Number(k), vocabSize);
      if (typeof v !== 'number' || Number.isNaN(v)) fail(`${n('logitBias')}[${k}]`, 'a number', v);
    }
  }
  if (o.stopTokenIds !== undefined) {
    if (!Array.isArray(o.stopTokenIds)) fail(n('stopTokenIds'), 'an array of token ids', o.stopTokenIds);
    o.stopTokenIds.forEach((id, i) => tokenId(`${n('stopTokenIds')}[${i}]`, id, vocabSize));
  }
  let stop: string[] | undefined;
  if (o.stop !== undefined) {
    if (typeof o.stop === 'string') stop = [o.stop];
    else if (Array.isArray(o.stop)) {
      o.stop.forEach((s, i) => typeof s !== 'string' && fail(`${n('stop')}[${i}]`, 'a string', s));
      stop = o.stop;
    } else fail(n('stop'), 'a string or an array of strings', o.stop);
  }
  for (const k of ['addBos', 'continuation', 'cache'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') fail(n(k), 'true or false', o[k]);
  }
  if (o.signal !== undefined && !(isObject(o.signal) && typeof o.signal.aborted === 'boolean')) fail(n('signal'), 'an AbortSignal', o.signal);
  if (o.jsonSchema !== undefined) {
    // A stop could cut the value short and still report it finished; the schema decides where the output ends.
    if (stop?.length) throw new InvalidOptionsError(n('stop'), `cannot be combined with ${n('jsonSchema')}: the output ends when the JSON value is complete. Remove it.`);
    if (o.stopTokenIds !== undefined) throw new InvalidOptionsError(n('stopTokenIds'), `cannot be combined with ${n('jsonSchema')}: the output ends when the JSON value is complete. Remove it.`);
    compileJsonSchema(o.jsonSchema);
  }
  return { ...o, stop };
}

/** The text of a chat message's content: a string, or an OpenAI content-parts array whose text parts are joined. */
function messageText(option: string, content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) fail(option, 'a string or an array of text parts ({ type: "text", text })', content);
  return content
    .map((p, j) => {
      if (!isObject(p) || p.type !== 'text' || typeof p.text !== 'string') {
        fail(`${option}[${j}]`, 'a text part { type: "text", text: string } (the model reads text only)', isObject(p) && typeof p.type === 'string' ? `a "${p.type}" part` : p);
      }
      return p.text as string;
    })
    .join('');
}

/** Checks a chat completion request's shape and returns its messages with string contents. */
export function validateChatRequest(req: unknown): { messages: ChatMessage[]; stream: boolean; contextOverflow?: ContextOverflowPolicy } {
  if (!isObject(req)) fail('request', 'an object with messages', req);
  if (!Array.isArray(req.messages)) fail('messages', 'an array of { role, content } messages', req.messages);
  if (req.stream !== undefined && typeof req.stream !== 'boolean') fail('stream', 'true or false', req.stream);
  const contextOverflow = req.context_overflow as ContextOverflowPolicy | undefined;
  if (contextOverflow !== undefined && !CONTEXT_OVERFLOW_POLICIES.includes(contextOverflow)) {
    fail('context_overflow', CONTEXT_OVERFLOW_POLICIES.map((p) => `"${p}"`).join(' or '), contextOverflow);
  }
  const messages = req.messages.map((m, i): ChatMessage => {
    if (!isObject(m)) fail(`messages[${i}]`, 'an object { role, content }', m);
    if (m.role !== 'system' && m.role !== 'user' && m.role !== 'assistant') fail(`messages[${i}].role`, '"system", "user" or "assistant"', m.role);
    return { role: m.role, content: messageText(`messages[${i}].content`, m.content) };
  });
  return { messages, stream: req.stream === true, contextOverflow };
}

/** tokenize() and score() text. */
export function validateText(text: unknown): asserts text is string {
  if (typeof text !== 'string') fail('text', 'a string', text);
}

/** tokenize() options: { addBos }. */
export function validateTokenizeOptions(options: unknown): void {
  if (options === undefined) return;
  if (!isObject(options)) fail('options', 'an object { addBos }', options);
  if (options.addBos !== undefined && typeof options.addBos !== 'boolean') fail('addBos', 'true or false', options.addBos);
}

/** detokenize() ids: token ids within the vocabulary when its size is known. */
export function validateTokenIds(ids: unknown, vocabSize?: number): asserts ids is number[] {
  if (!Array.isArray(ids)) fail('ids', 'an array of token ids', ids);
  ids.forEach((id, i) => tokenId(`ids[${i}]`, id, vocabSize));
}

/** score() options: { signal, onProgress }. */
export function validateScoreOptions(options: unknown): void {
  if (options === undefined) return;
  if (!isObject(options)) fail('options', 'an object { signal, onProgress }', options);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') fail('onProgress', 'a function', options.onProgress);
  if (options.signal !== undefined && !(isObject(options.signal) && typeof options.signal.aborted === 'boolean')) fail('signal', 'an AbortSignal', options.signal);
}
