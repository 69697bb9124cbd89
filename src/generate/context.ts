/**
 * Fitting a chat into the context. A conversation fits when its prompt leaves room for the reply: max_tokens, or a
 * quarter of the context when max_tokens is unset or larger. When it does not, the oldest turns (a user message and
 * the assistant's answer) are dropped ('drop_oldest', the default) or a ContextOverflowError is thrown ('error');
 * the system message and the last user message are always kept.
 *
 * Dropping a turn changes the prompt right after the system message, so the KV cache is of no use for that request.
 * To make that rare, turns are dropped until the prompt fills at most half the context, and the next requests keep
 * dropping the same turns while they fit (they then extend the cached prompt, which is only prefilled at its end).
 */
import type { ChatMessage } from './chat-template.ts';
import { ContextOverflowError } from '../errors.ts';
import { commonPrefixLength } from './generate.ts';

export type ContextOverflowPolicy = 'drop_oldest' | 'error';
export const CONTEXT_OVERFLOW_POLICIES: readonly ContextOverflowPolicy[] = ['drop_oldest', 'error'];

/** Tokens a chat prompt leaves free for its reply: max_tokens, at most a quarter of the context, at least 1. */
export function replyRoom(contextLength: number, maxTokens?: number): number {
  return Math.max(1, Math.min(maxTokens ?? Infinity, Math.ceil(contextLength / 4)));
}

export interface FittedConversation {
  /** Prompt ids of the messages kept. */
  ids: number[];
  /** Messages left out, oldest first: always whole turns, so an even count. */
  droppedMessages: number;
}

/** What the previous request left: the KV cache's ids and the messages it dropped. */
export interface PreviousFit {
  cachedIds: readonly number[];
  droppedMessages: number;
}

/**
 * The prompt of `messages` (system?, user, assistant, ..., user) that fits `contextLength` with `reply` tokens to
 * spare. `encode` builds a conversation's prompt ids. Nothing is dropped while the whole conversation fits; then the
 * turns `previous` dropped are dropped again if that fits and reuses more of its cache, else the oldest turns until
 * the prompt fills half the context. When even the system message and the last user message leave less room, they
 * still run if the prompt itself fits (the reply then ends with 'length'); a prompt longer than the context throws
 * ContextOverflowError.
 */
export function fitConversation(
  messages: ChatMessage[],
  encode: (messages: ChatMessage[]) => number[],
  contextLength: number,
  reply: number,
  policy: ContextOverflowPolicy = 'drop_oldest',
  previous?: PreviousFit,
): FittedConversation {
  const head = messages[0]?.role === 'system' ? 1 : 0;
  const turns = Math.floor((messages.length - head - 1) / 2); // droppable (user, assistant) pairs
  const fits = (ids: number[]) => ids.length + reply <= contextLength + 1;
  const prompts = new Map<number, number[]>();
  const keep = (k: number) => {
    let ids = prompts.get(k);
    if (!ids) prompts.set(k, (ids = encode([...messages.slice(0, head), ...messages.slice(head + 2 * k)])));
    return ids;
  };
  const all = keep(0);
  if (fits(all) || turns === 0) {
    if (all.length > contextLength) throw new ContextOverflowError(all.length, contextLength);
    return { ids: all, droppedMessages: 0 };
  }
  if (policy === 'error') throw new ContextOverflowError(all.length, contextLength, reply);
  const half = (ids: number[]) => ids.length <= contextLength / 2;
  const k = fewest(1, turns, keep, fits);
  const least = keep(k);
  const again = previous && previous.droppedMessages % 2 === 0 ? previous.droppedMessages / 2 : 0;
  if (again === k && fits(least)) return { ids: least, droppedMessages: 2 * k };
  if (again > k && again <= turns) {
    const ids = keep(again);
    const reuse = (x: number[]) => commonPrefixLength(x, previous!.cachedIds);
    if (fits(ids) && reuse(ids) > reuse(least)) return { ids, droppedMessages: 2 * again };
  }
  if (!fits(least)) {
    if (least.length > contextLength) throw new ContextOverflowError(least.length, contextLength);
    return { ids: least, droppedMessages: 2 * k };
  }
  const h = fewest(k, turns, keep, half);
  return { ids: keep(h), droppedMessages: 2 * h };
}

/**
 * The least k in lo..hi whose keep(k) passes `ok`, by bisection (the prompt shrinks as turns go); hi when none does.
 */
function fewest(lo: number, hi: number, keep: (k: number) => number[], ok: (ids: number[]) => boolean): number {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ok(keep(mid))) hi = mid;
    else lo = mid + 1;
  }
  return hi;
}
