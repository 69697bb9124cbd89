/**
 * The token generation loop. Decode steps are submitted ahead of the CPU: the sampled id of step i is read back
 * (4 bytes, a mapAsync on a small ring of buffers) while steps i+1.. are already queued, so the GPU never waits
 * for JavaScript and no readback blocks. Steps submitted past a stop are discarded.
 */
import { ContextOverflowError, LlamaWebGpuError } from '../errors.ts';
import type { SamplingParams } from '../gpu/ops/sampler.ts';
import type { LlamaModel } from '../model/llama.ts';
import type { TokenConstraint } from './json-mask.ts';

export interface SamplingOptions {
  /** Softmax temperature; 0 = greedy (argmax). Default 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** Added to the logit of each token id before sampling (e.g. -100 bans it). */
  logitBias?: Record<number, number>;
  /** Same seed, same prompt, same options: same output. */
  seed?: number;
}

export interface GenerateIdsOptions extends SamplingOptions {
  maxTokens?: number;
  stopTokenIds?: number[];
  signal?: AbortSignal;
  /**
   * Reuse the keys and values of the longest common prefix of this prompt and the tokens already in the KV cache
   * (the previous requests' prompt and output), prefilling only the rest. Default true; false prefills it all.
   */
  cache?: boolean;
  /**
   * Restricts every token (structured output: json-mask.ts). Each draw then waits for the previous token, whose
   * mask it needs (the forward pass before it does not), and generation stops as soon as the constraint is done.
   */
  constraint?: TokenConstraint;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export function samplingParams(o: SamplingOptions): SamplingParams {
  return {
    temperature: o.temperature ?? 1,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    minP: o.minP ?? 0,
    repetitionPenalty: o.repetitionPenalty ?? 1,
    frequencyPenalty: o.frequencyPenalty ?? 0,
    presencePenalty: o.presencePenalty ?? 0,
  };
}

/** Length of the common prefix of two id sequences. */
export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** A 32-bit mix of (seed, step) so every step draws independent bits from one user seed. */
export function stepSeed(seed: number, step: number): number {
  let h = (seed ^ Math.imul(step + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

const RING = 3;
/** Prompts at least this long have their prefill paced (and timed for pacing). */
const PACED_PROMPT = 32;

function ring(model: LlamaModel): GPUBuffer[] {
  return (model.readbackRing ??= Array.from({ length: RING }, (_, i) =>
    model.gpu.device.createBuffer({ label: `readback.token${i}`, size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
  ));
}

/** Counters of one request's decode loop, in GenerateResult and in the engine's stats. */
export interface DecodeCounters {
  /** Command-buffer submits, token readbacks, and readbacks the CPU waited on with no other step queued. */
  submits: number;
  readbacks: number;
  stalls: number;
  /** JavaScript time spent recording and submitting decode steps. */
  encodeMs: number;
  /** With a constraint (jsonSchema): JavaScript time spent computing and uploading token masks. */
  maskMs?: number;
  /** Why the output is incomplete, when a constraint (jsonSchema's shortest value) could not be met within maxTokens. */
  warning?: string;
}

export interface GenerateResult extends DecodeCounters {
  finishReason: FinishReason;
  promptTokens: number;
  /** Leading prompt tokens whose keys and values were reused from the cache; the other promptTokens - cachedTokens were prefilled. */
  cachedTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
}

/**
 * Generates token ids after `promptIds` (which include BOS). Yields each id as soon as it is known; returns why it
 * stopped. Throws ContextOverflowError when the prompt does not fit; generation that reaches the end of the
 * context stops with 'length'.
 */
export async function* generateIds(
  model: LlamaModel,
  promptIds: number[],
  options: GenerateIdsOptions = {},
): AsyncGenerator<number, GenerateResult> {
  const P = promptIds.length;
  if (P === 0) throw new LlamaWebGpuError('EMPTY_PROMPT', 'The prompt has no tokens; pass at least BOS.');
  if (P > model.contextLength) throw new ContextOverflowError(P, model.contextLength);
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= model.config.vocabSize) {
      throw new LlamaWebGpuError('BAD_TOKEN', `Prompt token id ${id} is outside the vocabulary (0..${model.config.vocabSize - 1}).`);
    }
  }
  const maxTokens = Math.min(options.maxTokens ?? 256, model.contextLength - P + 1);
  const stopIds = new Set(options.stopTokenIds ?? [model.config.eosId]);
  const seed = options.seed ?? ((Math.random() * 2 ** 32) >>> 0);
  const bias = options.logitBias ? new Map(Object.entries(options.logitBias).map(([k, v]) => [Number(k), v])) : null;
  model.sampler.setParams(samplingParams(options));
  model.sampler.setLogitBias(bias);
  model.sampler.resetCounts(promptIds);
  const constraint = options.constraint;
  model.sampler.setMask(null);
  // A constraint needs each token before it can mask the next, so one step is in flight at a time.
  const depth = constraint ? 1 : RING;
  let maskMs = 0;
  // The last prompt token is always prefilled: its logits draw the first new token.
  const cached = options.cache === false ? 0 : Math.min(commonPrefixLength(model.cachedIds, promptIds), P - 1);
  const prefillIds = promptIds.slice(cached);
  const N = prefillIds.length;
  // Every id read back, including steps drained past a stop: decode step k embedded ids[k - 1] at position P + k - 1.
  const ids: number[] = [];

  const slots = ring(model);
  // Submitted steps, oldest first, each with its readback's map once requested. Where waiting on a map keeps a
  // core busy (Gpu.busyWaits: Dawn in Node), the map is requested only when the step should be nearly done (see
  // pace), which leaves that core to a software GPU; elsewhere it is requested right after the submit.
  const inflight: { slot: GPUBuffer; mapped?: Promise<void> }[] = [];
  const busyWaits = model.gpu.busyWaits;
  const timing = model.pace;
  let tLast = 0;
  let submitted = 0;
  let received = 0;
  let emitted = 0;
  let finishReason: FinishReason = 'length';
  let stalls = 0;
  let encodeMs = 0;
  const submitsBefore = model.submits;
  const t0 = performance.now();
  let tFirst = t0;

  // A map that fails (the device was lost) rejects where it is awaited; the steps behind it, never awaited then,
  // must not surface as unhandled rejections.
  const mapRead = (slot: GPUBuffer) => {
    const mapped = slot.mapAsync(GPUMapMode.READ);
    mapped.catch(() => {});
    return mapped;
  };
  const submitNext = () => {
    const slot = slots[submitted % RING];
    if (constraint) {
      const tm = performance.now();
      model.sampler.setMask(constraint.mask(maxTokens - submitted));
      maskMs += performance.now() - tm;
    }
    const te = performance.now();
    if (submitted === 0) model.prefill(prefillIds, cached, stepSeed(seed, 0), slot);
    else if (constraint) model.sampleNext(slot);
    else model.decode(P + submitted - 1, stepSeed(seed, submitted), slot);
    // With a constraint the next step's forward pass is queued now, so the GPU runs it while this token is read
    // back and the next mask computed; only its draw waits for the mask.
    if (constraint && submitted + 1 < maxTokens) model.decodeForward(P + submitted, stepSeed(seed, submitted + 1));
    if (submitted > 0) encodeMs += performance.now() - te;
    inflight.push({ slot, mapped: busyWaits ? undefined : mapRead(slot) });
    submitted++;
  };
  // Sleeps until about when the oldest step should finish (90% of the last step time after the previous token,
  // or of the last prefill rate for the prompt), then requests its map: a late guess only costs a short busy wait.
  const pace = async () => {
    const due = received === 0 ? (N >= PACED_PROMPT ? t0 + 0.9 * timing.prefillMsPerToken * N : 0) : tLast + 0.9 * timing.stepMs;
    const ms = due - performance.now();
    if (ms >= 1) await new Promise((resolve) => setTimeout(resolve, ms));
  };
  const nextReadback = async () => {
    const next = inflight.shift()!;
    if (!next.mapped) {
      await pace();
      next.mapped = mapRead(next.slot);
    }
    await next.mapped;
  };

  try {
    const unmet = constraint && constraint.minTokens > maxTokens;
    if (maxTokens <= 0 || unmet) {
      const warning = unmet
        ? `The JSON schema's shortest value takes ${constraint.minTokens} tokens, more than the ${maxTokens} allowed; nothing was generated. Raise max_tokens (or shorten the prompt).`
        : undefined;
      return { finishReason, promptTokens: P, cachedTokens: 0, generatedTokens: 0, prefillMs: 0, decodeMs: 0, submits: 0, readbacks: 0, stalls: 0, encodeMs: 0, warning };
    }
    submitNext();
    while (received < maxTokens) {
      if (options.signal?.aborted) {
        finishReason = 'abort';
        break;
      }
      while (inflight.length < depth && submitted < maxTokens) submitNext();
      if (inflight.length === 1 && received > 0) stalls++;
      await nextReadback();
      const slot = slots[received % RING];
      const id = new Uint32Array(slot.getMappedRange(0, 4))[0];
      slot.unmap();
      ids.push(id);
      const now = performance.now();
      if (received === 0) {
        tFirst = now;
        // The lowest rate seen over prompts of PACED_PROMPT tokens or more (shorter ones leave the prefill kernels'
        // token blocks part empty, and the first prefill also compiles pipelines; sleeping too little is harmless).
        const perToken = (now - t0) / N;
        if (N >= PACED_PROMPT) timing.prefillMsPerToken = timing.prefillMsPerToken > 0 ? Math.min(timing.prefillMsPerToken, perToken) : perToken;
      } else {
        timing.stepMs = received === 1 ? now - tLast : 0.8 * timing.stepMs + 0.2 * (now - tLast);
      }
      tLast = now;
      received++;
      if (constraint) {
        constraint.accept(id);
        if (constraint.done) finishReason = 'stop';
        if (id === model.config.eosId) break;
      } else if (stopIds.has(id)) {
        finishReason = 'stop';
        break;
      }
      emitted++;
      yield id;
      if (constraint?.done) break;
    }
    // A constrained output that ends complete exactly at maxTokens is whole.
    if (constraint?.complete && finishReason === 'length') finishReason = 'stop';
  } finally {
    if (constraint) model.sampler.setMask(null);
    // Drain steps submitted past the stop, so the ring is unmapped and the GPU idle for the next request.
    while (inflight.length > 0) {
      await nextReadback();
      const slot = slots[received % RING];
      ids.push(new Uint32Array(slot.getMappedRange(0, 4))[0]);
      slot.unmap();
      received++;
    }
    model.noteDecoded(P, ids.slice(0, submitted - 1));
  }
  const t1 = performance.now();
  return {
    finishReason,
    promptTokens: P,
    cachedTokens: cached,
    generatedTokens: emitted,
    prefillMs: tFirst - t0,
    decodeMs: t1 - tFirst,
    submits: model.submits - submitsBefore,
    readbacks: received,
    stalls,
    encodeMs,
    maskMs: constraint ? maskMs : undefined,
  };
}
