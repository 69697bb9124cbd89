/**
 * Decides before downloading or loading whether a model package fits a GPU: every weight chunk and KV cache
 * buffer must fit one storage binding, and with a memory budget, weights + activations + KV cache must fit it.
 * When the caller does not fix the context length, it is reduced until the KV cache fits.
 *
 * WebGPU does not expose how much memory a GPU has, so memory is only checked against `memoryBudgetBytes`
 * (an app's own estimate, e.g. from navigator.deviceMemory or a user setting).
 */
import type { Manifest } from '../formats/manifest.ts';
import { kvDim } from '../model/config.ts';

export interface FitReport {
  fits: boolean;
  /** Why it does not fit and what to do; also notes on decisions made (a reduced context). */
  reasons: string[];
  /** Bytes of every weight chunk (data and scales): what the GPU holds for the weights. */
  weightBytes: number;
  /** KV cache bytes per token of context, all layers, keys and values. */
  kvBytesPerToken: number;
  /** The context length the KV cache is sized for. */
  contextLength: number;
  /** KV cache stored as f16 (the device has shader-f16), else f32. */
  kvF16: boolean;
  /** The largest single buffer the model binds. */
  largestBinding: number;
  /** Device limits to request: at least these values. */
  requiredLimits: Record<string, number>;
}

/** Prompt tokens per prefill step that activations are sized for (LlamaModel's default). */
const PREFILL_TOKENS = 64;
/** Below this the model is not useful for chat; a smaller context counts as "does not fit". */
const MIN_CONTEXT = 256;
/** WebGPU's guaranteed limits, used for any limit the caller leaves out. */
const DEFAULT_LIMITS = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20 };

export function checkFit(
  manifest: Manifest,
  limits: GPUSupportedLimits | Record<string, number>,
  features: { f16: boolean },
  options: { contextLength?: number; memoryBudgetBytes?: number } = {},
): FitReport {
  const c = manifest.config;
  const l = limits as Record<string, number>;
  const maxBinding = l.maxStorageBufferBindingSize ?? DEFAULT_LIMITS.maxStorageBufferBindingSize;
  const maxBuffer = l.maxBufferSize ?? DEFAULT_LIMITS.maxBufferSize;
  const bindLimit = Math.min(maxBinding, maxBuffer);
  const reasons: string[] = [];
  let fits = true;
  const fail = (reason: string) => {
    fits = false;
    reasons.push(reason);
  };

  let weightBytes = 0;
  let largestWeight = { bytes: 0, what: '' };
  for (const t of manifest.tensors) {
    t.chunks.forEach((chunk, i) => {
      for (const [range, part] of [[chunk.data, 'data'], [chunk.scales, 'scales']] as const) {
        if (!range) continue;
        weightBytes += range.byteLength;
        if (range.byteLength > largestWeight.bytes) largestWeight = { bytes: range.byteLength, what: `${t.name}[${i}] ${part}` };
      }
    });
  }
  if (largestWeight.bytes > bindLimit) {
    const limitName = maxBinding <= maxBuffer ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
    fail(
      `Weight ${largestWeight.what} is ${mb(largestWeight.bytes)} in one buffer, but this GPU's ${limitName} is ${mb(bindLimit)}. ` +
        `Convert the model with shards of at most ${mb(bindLimit)}, or use a GPU with higher limits.`,
    );
  }

  const kvF16 = features.f16;
  const kvRowBytes = kvDim(c) * (kvF16 ? 2 : 4); // one token's keys (or values) in one layer
  const kvBytesPerToken = 2 * c.nLayers * kvRowBytes;
  const t = PREFILL_TOKENS;
  const activationBuffers = [t * c.dim * 4, t * kvDim(c) * 4, t * c.hiddenDim * 4, c.vocabSize * 4];
  const activationBytes = 4 * t * c.dim * 4 + 2 * t * kvDim(c) * 4 + t * c.hiddenDim * 4 + c.vocabSize * 4 + c.dim * 4;
  const largestActivation = Math.max(...activationBuffers);
  if (largestActivation > bindLimit) {
    fail(`An activation buffer needs ${mb(largestActivation)}, over this GPU's binding limit of ${mb(bindLimit)}. Use a GPU with higher limits.`);
  }

  // The longest context each constraint allows: the per-layer key (value) cache buffer, and the memory budget.
  let maxContext = Math.floor(bindLimit / kvRowBytes);
  let limitedBy = `a layer's KV cache buffer must fit this GPU's binding limit of ${mb(bindLimit)}`;
  const budget = options.memoryBudgetBytes;
  if (budget !== undefined) {
    const free = budget - weightBytes - activationBytes;
    if (free < MIN_CONTEXT * kvBytesPerToken) {
      fail(
        `The weights need ${gb(weightBytes)} and activations ${mb(activationBytes)}, leaving ${gb(Math.max(0, free))} of the ` +
          `${gb(budget)} memory budget for the KV cache (${mb(kvBytesPerToken * MIN_CONTEXT)} for ${MIN_CONTEXT} tokens). ` +
          'Choose a smaller model or a more quantized package (q4), or raise the memory budget on a GPU with more memory.',
      );
    }
    const byBudget = Math.floor(Math.max(0, free) / kvBytesPerToken);
    if (byBudget < maxContext) {
      maxContext = byBudget;
      limitedBy = `the KV cache (${mb(kvBytesPerToken)} per token) must fit the ${gb(budget)} memory budget after the weights`;
    }
  }

  let contextLength: number;
  if (options.contextLength !== undefined) {
    contextLength = Math.min(options.contextLength, c.maxSeqLen);
    if (options.contextLength > c.maxSeqLen) reasons.push(`Context ${options.contextLength} is longer than the model was trained for; using ${c.maxSeqLen}.`);
    if (contextLength > maxContext && fits) {
      fail(`A context of ${contextLength} tokens does not fit: ${limitedBy}, which allows at most ${maxContext} tokens. Ask for a shorter context.`);
    }
  } else {
    contextLength = Math.min(c.maxSeqLen, maxContext);
    if (contextLength < c.maxSeqLen && fits) {
      // A multiple of 64 keeps attention's tiles whole.
      contextLength = contextLength >= 64 ? contextLength - (contextLength % 64) : contextLength;
      reasons.push(`Context reduced from ${c.maxSeqLen} to ${contextLength} tokens: ${limitedBy}.`);
    }
    if (contextLength < Math.min(MIN_CONTEXT, c.maxSeqLen) && fits) {
      fail(`Only ${contextLength} tokens of context fit (${limitedBy}); at least ${MIN_CONTEXT} are needed. Use a smaller model or a GPU with more memory.`);
    }
  }
  contextLength = Math.max(1, contextLength);

  const largestBinding = Math.max(largestWeight.bytes, largestActivation, contextLength * kvRowBytes);
  return {
    fits,
    reasons,
    weightBytes,
    kvBytesPerToken,
    contextLength,
    kvF16,
    largestBinding,
    requiredLimits: { maxStorageBufferBindingSize: largestBinding, maxBufferSize: largestBinding },
  };
}

function mb(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

function gb(n: number): string {
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}
