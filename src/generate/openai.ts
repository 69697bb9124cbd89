/**
 * `engine.chat.completions.create(...)` in the shape of OpenAI's chat completions API: a streamed sequence of
 * chunks (`stream: true`) ending with one that carries usage, or a single completion object. It runs on a ChatHost
 * (what an engine on this thread lends it), not on the Engine class.
 */
import type { EngineStats, GenerateOptions, GenerateStream, RunOptions } from '../engine-types.ts';
import type { ChatMessage } from './chat-template.ts';
import { fitConversation, replyRoom, type ContextOverflowPolicy } from './context.ts';
import type { FinishReason } from './generate.ts';
import type { JsonSchema } from './json-schema.ts';
import { InvalidOptionsError } from '../errors.ts';
import { CHAT_OPTION_NAMES, validateChatRequest, validateGenerateOptions } from './validate.ts';

/** A text part of an OpenAI content array; a message's text parts are joined. */
export interface ChatContentPart {
  type: 'text';
  text: string;
}

export interface ChatRequestMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ChatContentPart[];
}

export interface ChatCompletionRequest {
  messages: ChatRequestMessage[];
  stream?: boolean;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  max_tokens?: number;
  stop?: string | string[];
  seed?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  repetition_penalty?: number;
  logit_bias?: Record<string, number>;
  /** Structured output: `json_object` (any JSON object) or `json_schema` (a value matching json_schema.schema). */
  response_format?: ResponseFormat;
  /** Reuse the KV cache of the previous request's shared prefix (default true); false prefills the whole prompt. */
  cache?: boolean;
  /** When the conversation leaves no room for the reply: drop the oldest turns (default) or throw ContextOverflowError. */
  context_overflow?: ContextOverflowPolicy;
  signal?: AbortSignal;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** cached_tokens: leading prompt tokens whose keys and values came from the KV cache (as OpenAI reports them). */
  prompt_tokens_details: { cached_tokens: number };
  extra: {
    prefill_tokens_per_s: number;
    decode_tokens_per_s: number;
    time_to_first_token_ms: number;
    cached_prompt_tokens: number;
    /** Prompt tokens run through the model (prompt_tokens - cached_prompt_tokens). */
    prefilled_tokens: number;
    /** Oldest messages left out so the conversation fits the context (context_overflow 'drop_oldest'). */
    dropped_messages: number;
    /** Why finish_reason is 'length' with nothing generated: response_format's shortest value exceeds max_tokens. */
    warning?: string;
  };
}

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name?: string; description?: string; strict?: boolean; schema: JsonSchema } };

/** The JSON schema a response_format asks for (none for text, any object for json_object). */
export function responseFormatSchema(format: unknown): JsonSchema | undefined {
  if (format === undefined) return undefined;
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(format)) throw new InvalidOptionsError('response_format', 'must be an object { type: "text" | "json_object" | "json_schema" }.');
  if (format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'object' };
  if (format.type !== 'json_schema') throw new InvalidOptionsError('response_format.type', `must be "text", "json_object" or "json_schema", got ${JSON.stringify(format.type)}.`);
  const js = format.json_schema;
  if (!isObject(js) || !(isObject(js.schema) || typeof js.schema === 'boolean')) {
    throw new InvalidOptionsError('response_format.json_schema', 'must be an object { name?, schema } whose schema is a JSON schema object.');
  }
  return js.schema as JsonSchema;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: 0; delta: { role?: 'assistant'; content?: string }; finish_reason: OpenAiFinish | null }[];
  usage?: Usage;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: 0; message: { role: 'assistant'; content: string }; finish_reason: OpenAiFinish }[];
  usage: Usage;
}

type OpenAiFinish = 'stop' | 'length' | 'abort';

export interface ChatApi {
  completions: {
    create(req: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
    create(req: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
    create(req: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion>;
  };
}

let counter = 0;

/** A chat request's sampling and stopping fields as generate options (checked by validateGenerateOptions). */
export function chatGenerateOptions(req: ChatCompletionRequest): GenerateOptions {
  return {
    temperature: req.temperature ?? 1,
    topP: req.top_p,
    topK: req.top_k,
    minP: req.min_p,
    maxTokens: req.max_tokens,
    stop: req.stop,
    seed: req.seed,
    frequencyPenalty: req.frequency_penalty,
    presencePenalty: req.presence_penalty,
    repetitionPenalty: req.repetition_penalty,
    logitBias: req.logit_bias,
    jsonSchema: responseFormatSchema(req.response_format),
    cache: req.cache,
    signal: req.signal,
    continuation: false,
  };
}

/** What the chat API needs of an engine on this thread: its model's sizes, KV cache, chat tokenizer and queue. */
export interface ChatHost {
  readonly modelId: string;
  readonly vocabSize: number;
  readonly contextLength: number;
  /** Token ids whose keys and values the KV cache holds. */
  readonly cachedIds: readonly number[];
  encodeChat(messages: ChatMessage[]): number[];
  /** Queues a request with checked options, as generate() does. */
  run(promptIds: number[], options: RunOptions): GenerateStream;
}

/** The prompt, the count of messages dropped to fit it, and the engine run that answers a chat request. */
export interface ChatRun {
  promptIds: number[];
  droppedMessages: number;
  run: GenerateStream;
}

/** The host of each ChatApi that createChatApi made, for startChatRun. */
const hosts = new WeakMap<ChatApi, ChatHost>();
/** Messages each host's last chat request dropped (fitConversation drops them again while that reuses the cache). */
const lastDropped = new WeakMap<ChatHost, number>();

/**
 * Checks a chat request, fits its conversation to the context and starts (when iterated) the run that replies.
 * `chat` is an Engine's (createEngine); the CLI uses this for the token ids that create() does not report.
 */
export function startChatRun(chat: ChatApi, req: ChatCompletionRequest): ChatRun {
  const host = hosts.get(chat);
  if (!host) throw new InvalidOptionsError('chat', 'startChatRun takes the chat API of an engine from createEngine(), on this thread.');
  const { messages, contextOverflow } = validateChatRequest(req);
  const options = validateGenerateOptions(chatGenerateOptions(req), host.vocabSize, CHAT_OPTION_NAMES);
  const contextLength = host.contextLength;
  const reply = replyRoom(contextLength, options.maxTokens);
  const previous = { cachedIds: host.cachedIds, droppedMessages: lastDropped.get(host) ?? 0 };
  const { ids, droppedMessages } = fitConversation(messages, (m) => host.encodeChat(m), contextLength, reply, contextOverflow, previous);
  lastDropped.set(host, droppedMessages);
  return { promptIds: ids, droppedMessages, run: host.run(ids, { ...options, droppedMessages }) };
}

/** A finished request's stats as OpenAI-shaped usage. */
export function usageOf(s: EngineStats): Usage {
  return {
    prompt_tokens: s.promptTokens,
    completion_tokens: s.generatedTokens,
    total_tokens: s.promptTokens + s.generatedTokens,
    prompt_tokens_details: { cached_tokens: s.cachedPromptTokens },
    extra: {
      prefill_tokens_per_s: s.prefillTokensPerSecond,
      decode_tokens_per_s: s.decodeTokensPerSecond,
      time_to_first_token_ms: s.timeToFirstTokenMs,
      cached_prompt_tokens: s.cachedPromptTokens,
      prefilled_tokens: s.prefilledTokens,
      dropped_messages: s.droppedMessages,
      ...(s.warning ? { warning: s.warning } : {}),
    },
  };
}

export function createChatApi(host: ChatHost): ChatApi {
  const create = async (req: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion> => {
    const { run } = startChatRun(chat, req);
    const id = `chatcmpl-${Date.now().toString(36)}-${counter++}`;
    const created = Math.floor(Date.now() / 1000);
    const model = host.modelId;
    const usage = async (): Promise<Usage> => usageOf(await run.result);
    const finish = async (): Promise<OpenAiFinish> => ((await run.result).finishReason ?? 'stop') as FinishReason;
    if (req.stream) {
      return (async function* (): AsyncGenerator<ChatCompletionChunk> {
        yield { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] };
        for await (const d of run) {
          if (d.text) yield { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta: { content: d.text }, finish_reason: null }] };
        }
        yield { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta: {}, finish_reason: await finish() }], usage: await usage() };
      })();
    }
    let content = '';
    for await (const d of run) content += d.text;
    return { id, object: 'chat.completion', created, model, choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: await finish() }], usage: await usage() };
  };
  const chat: ChatApi = { completions: { create: create as ChatApi['completions']['create'] } };
  hosts.set(chat, host);
  return chat;
}
