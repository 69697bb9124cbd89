/** The stats of an engine before its first request, or of a request cancelled before it ran. */
import type { EngineStats } from '../engine-types.ts';

export function idleStats(loadMs: number, dispatchesPerToken: number, contextLength: number, finishReason: EngineStats['finishReason'] = null): EngineStats {
  return {
    loadMs, promptTokens: 0, cachedPromptTokens: 0, prefilledTokens: 0, generatedTokens: 0, timeToFirstTokenMs: 0,
    contextTokens: 0, contextLength, droppedMessages: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0,
    finishReason, submits: 0, readbacks: 0, stalls: 0, encodeMs: 0, dispatchesPerToken,
  };
}
