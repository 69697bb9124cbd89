// fitConversation on a stand-in encoder where every message is a known number of tokens: which turns a chat drops
// to fit its context, the room kept for the reply, the two policies, and dropping the same turns again.
import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/generate/chat-template.ts';
import { fitConversation, replyRoom } from '../../src/generate/context.ts';
import { ContextOverflowError } from '../../src/errors.ts';

/** One token per character of each message's content, plus one (BOS) per user message: ids are char codes. */
function encode(messages: ChatMessage[]): number[] {
  const ids: number[] = [];
  for (const m of messages) {
    if (m.role === 'user') ids.push(1);
    for (const ch of m.content) ids.push(ch.charCodeAt(0));
  }
  return ids;
}

/** A system message of 10 tokens, then `turns` answered turns and a last user message, each message 9 tokens. */
function chat(turns: number): ChatMessage[] {
  const m: ChatMessage[] = [{ role: 'system', content: 'S'.repeat(10) }];
  for (let t = 0; t < turns; t++) m.push({ role: 'user', content: `u${t}`.padEnd(8, '.') }, { role: 'assistant', content: `a${t}`.padEnd(9, '.') });
  m.push({ role: 'user', content: 'last'.padEnd(8, '.') });
  return m;
}

describe('replyRoom', () => {
  it('is max_tokens, at most a quarter of the context, at least 1', () => {
    expect(replyRoom(128)).toBe(32);
    expect(replyRoom(128, 10)).toBe(10);
    expect(replyRoom(128, 1000)).toBe(32);
    expect(replyRoom(128, 0)).toBe(1);
    expect(replyRoom(10)).toBe(3);
  });
});

describe('fitConversation', () => {
  // chat(n) is 10 + 18 n + 9 tokens.
  it('keeps the whole conversation while it leaves room for the reply', () => {
    const m = chat(3);
    expect(encode(m).length).toBe(73);
    // 73 + 28 <= 100 + 1
    expect(fitConversation(m, encode, 100, 28)).toEqual({ ids: encode(m), droppedMessages: 0 });
  });

  it('drops the oldest turns down to half the context, keeping the system and last user message', () => {
    const m = chat(6); // 127 tokens
    const fit = fitConversation(m, encode, 128, 16);
    // Fitting needs 1 turn dropped (109 + 16 <= 129); half the context (64) needs 4 (55 tokens).
    expect(fit.droppedMessages).toBe(8);
    expect(fit.ids).toEqual(encode([m[0], ...m.slice(9)]));
    expect(fit.ids.length).toBeLessThanOrEqual(64);
  });

  it('drops the same turns again while they fit and reuse more of the cache, else fits anew', () => {
    const m = chat(6);
    const first = fitConversation(m, encode, 128, 16);
    // The next turn, its reply in the cache: dropping 4 turns again extends the cached prompt.
    const next = [...m, { role: 'assistant' as const, content: 'r'.repeat(9) }, { role: 'user' as const, content: 'again'.padEnd(8, '.') }];
    const cachedIds = [...first.ids, ...'r'.repeat(9).split('').map((c) => c.charCodeAt(0))];
    const again = fitConversation(next, encode, 128, 16, 'drop_oldest', { cachedIds, droppedMessages: first.droppedMessages });
    expect(again.droppedMessages).toBe(8);
    expect(again.ids.slice(0, cachedIds.length)).toEqual(cachedIds);
    // When exactly those turns are the fewest to drop, no more go (the prompt is past half the context now).
    const tight = fitConversation(next, encode, 100, 16, 'drop_oldest', { cachedIds, droppedMessages: 8 });
    expect(tight.droppedMessages).toBe(8);
    expect(tight.ids.length).toBeGreaterThan(55);
    // Another conversation's cache (nothing in common past BOS) gets the fewest drops that fit, down to half.
    const other = fitConversation(next, encode, 128, 16, 'drop_oldest', { cachedIds: [1, 7, 7], droppedMessages: 10 });
    expect(other.droppedMessages).toBe(10);
    const fresh = fitConversation(next, encode, 128, 16, 'drop_oldest', { cachedIds: [1, 7, 7], droppedMessages: 12 });
    expect(fresh.droppedMessages).toBe(10);
    // Dropping them again is skipped when it no longer fits.
    const longer = [...next, { role: 'assistant' as const, content: 'x'.repeat(40) }, { role: 'user' as const, content: 'y'.repeat(40) }];
    const moved = fitConversation(longer, encode, 128, 16, 'drop_oldest', { cachedIds: again.ids, droppedMessages: 8 });
    expect(moved.droppedMessages).toBeGreaterThan(8);
    expect(moved.ids.length + 16).toBeLessThanOrEqual(129);
  });

  it("throws ContextOverflowError under 'error' when turns would have to go, naming the way out", () => {
    const m = chat(6);
    let err: unknown;
    try {
      fitConversation(m, encode, 128, 16, 'error');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ContextOverflowError);
    expect((err as ContextOverflowError).code).toBe('CONTEXT_OVERFLOW');
    expect((err as Error).message).toContain("context_overflow: 'drop_oldest'");
    expect((err as Error).message).toContain('127 tokens');
  });

  it('runs the system message and last user message even with less room than asked, and refuses them past the context', () => {
    const m: ChatMessage[] = [{ role: 'system', content: 'S'.repeat(50) }, { role: 'user', content: 'u'.repeat(20) }];
    // 71 tokens: fits 80 with 10 to spare, not the 16 asked; nothing to drop, so it runs under both policies.
    for (const policy of ['drop_oldest', 'error'] as const) expect(fitConversation(m, encode, 80, 16, policy).droppedMessages).toBe(0);
    expect(() => fitConversation(m, encode, 70, 16)).toThrow(ContextOverflowError);
    const withTurns = chat(2);
    withTurns[withTurns.length - 1] = { role: 'user', content: 'u'.repeat(100) };
    expect(() => fitConversation(withTurns, encode, 100, 10)).toThrow(/the context holds 100/);
  });

  it('handles a chat without a system message', () => {
    const m = chat(6).slice(1); // 117 tokens
    const fit = fitConversation(m, encode, 100, 10);
    expect(fit.droppedMessages % 2).toBe(0);
    expect(fit.ids).toEqual(encode(m.slice(fit.droppedMessages)));
    expect(fit.ids.length).toBeLessThanOrEqual(50);
  });
});
