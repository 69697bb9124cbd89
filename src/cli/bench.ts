/**
 * llama-webgpu bench <package-dir> [--prompt-tokens N] [--gen-tokens N] [--adapter llvmpipe|swiftshader|default]
 *   [--verify first-load|always|never] [--json] [--quiet]
 *
 * Prefill and decode speed of a model package on this machine's GPU, with the per-token overheads that bound
 * small models: dispatches, submits, readbacks (and how many stalled the CPU), JS encode time per token and per
 * dispatch; plus load time, peak memory, and the adapter in use with the reason it was chosen. Progress (loading,
 * warm-up, prefill, decode token i/N) goes to stderr unless --quiet. --verify is createEngine's `verify`: whether the
 * load hashes every file against the manifest (first-load: only until one load has; never: load time without hashing).
 */
import type { Engine, EngineOptions } from '../engine.ts';
import type { Manifest } from '../formats/manifest.ts';
import { choiceOption, integerOption, numberOption, parseArgs, UsageError } from './args.ts';
import { describeAdapter, openPackageDir } from './open-model.ts';
import { Progress } from './progress.ts';

export const USAGE =
  'usage: llama-webgpu bench <package-dir> [--prompt-tokens N] [--gen-tokens N] [--adapter llvmpipe|swiftshader|default] [--verify first-load|always|never] [--json] [--quiet]';

/** The values of --verify: createEngine's `verify`. */
export const VERIFY_MODES = ['first-load', 'always', 'never'] as const satisfies readonly NonNullable<EngineOptions['verify']>[];

export async function run(args: string[]): Promise<number> {
  let p, promptTokens, genTokens, verify;
  try {
    p = parseArgs(args, { values: ['prompt-tokens', 'gen-tokens', 'adapter', 'context', 'prefill-chunk', 'verify'], flags: ['json', 'quiet'] });
    if (p.positional.length !== 1) throw new UsageError('expected one <package-dir>');
    promptTokens = integerOption(p, 'prompt-tokens', 128, 1);
    genTokens = integerOption(p, 'gen-tokens', 32, 1);
    verify = choiceOption(p, 'verify', VERIFY_MODES, 'first-load');
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const progress = new Progress(!p.options.has('quiet'));
  const adapterOption = p.options.get('adapter');
  let opened;
  try {
    opened = await openPackageDir(p.positional[0], {
      adapter: typeof adapterOption === 'string' ? adapterOption : undefined,
      contextLength: numberOption(p, 'context', Math.max(256, promptTokens + genTokens + 1)),
      prefillChunk: numberOption(p, 'prefill-chunk'),
      verify,
      onProgress: (e) => progress.update(`loading ${(100 * e.fraction).toFixed(0)}% (${e.phase}${e.totalBytes ? `, ${(e.loadedBytes / 1e6).toFixed(1)} of ${(e.totalBytes / 1e6).toFixed(1)} MB` : ''})`),
    });
  } catch (e) {
    clearInterval(sampler);
    progress.done();
    throw e;
  }
  const { engine, adapter, errors } = opened;
  try {
    progress.update(`adapter ${describeAdapter(adapter)}`, true);
    const c = engine.config;
    // Deterministic prompt of ordinary token ids (ids past the control and byte pieces).
    const ids = [c.bosId];
    for (let i = 1; i < promptTokens; i++) ids.push(259 + ((i * 7919) % Math.max(1, c.vocabSize - 259)));
    // Warm-up with the same prompt: compiles pipelines, touches every weight once, and times a prefill and a few
    // steps the way a second request in a session would find them (the generation loop paces its readbacks by them).
    // Both run with cache: false, so the timed run prefills the whole prompt rather than reuse the warm-up's.
    progress.update(`warm-up: prefill ${ids.length} tokens and 4 decode steps (compiles the pipelines)`, true);
    const warmStart = performance.now();
    for await (const _ of engine.generate(ids, { maxTokens: 4, temperature: 0, stopTokenIds: [], cache: false })) void _;
    progress.update(`warm-up done in ${seconds(warmStart)} s; prefill ${ids.length} tokens`, true);
    const runStart = performance.now();
    const stream = engine.generate(ids, { maxTokens: genTokens, temperature: 0, stopTokenIds: [], cache: false });
    let generated = 0;
    for await (const d of stream) {
      generated += d.tokenIds.length;
      if (generated === 1) progress.update(`decode token 1/${genTokens} (prefill and first token took ${seconds(runStart)} s)`, true);
      else progress.update(`decode token ${generated}/${genTokens}`, generated >= genTokens);
    }
    progress.done();
    const s = await stream.result;
    const decodeSteps = Math.max(1, s.generatedTokens - 1);
    const dispatchesPerToken = engine.model.forward.dispatchesPerDecode;
    const encodeMsPerToken = s.encodeMs / decodeSteps;
    const recordMsPerToken = recordDecodeMs(engine, s.promptTokens + s.generatedTokens);
    const result = {
      model: engine.manifest.name,
      adapter: engine.gpu.summary.description || engine.gpu.summary.device,
      /** hardware, llvmpipe, swiftshader or software (src/gpu/node.ts adapterKind). */
      adapterKind: adapter.kind,
      /** Why this adapter: "set by --adapter", "set by LLAMA_WEBGPU_ADAPTER", or the automatic choice's reason. */
      adapterReason: adapter.reason,
      adapterInfo: { vendor: adapter.summary.vendor, architecture: adapter.summary.architecture, device: adapter.summary.device, description: adapter.summary.description },
      shaderF16: engine.gpu.f16,
      /** Mesa lavapipe's compute threads (LP_NUM_THREADS; src/gpu/node.ts lavapipeThreads), null for Mesa's default. */
      lavapipeThreads: process.env.LP_NUM_THREADS ?? null,
      config: { dim: c.dim, hiddenDim: c.hiddenDim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads, vocabSize: c.vocabSize },
      weightDtypes: [...new Set(engine.manifest.tensors.filter((t) => t.shape.length === 2).map((t) => t.dtype))],
      /** Bytes of all shards. */
      weightBytes: engine.manifest.shards.reduce((sum, shard) => sum + shard.byteSize, 0),
      /** Weight bytes one decode step reads (package encoding): every tensor once, the embedding only when it is the classifier. */
      weightBytesPerToken: weightBytesPerToken(engine.manifest),
      promptTokens: s.promptTokens,
      generatedTokens: s.generatedTokens,
      prefillTokensPerSecond: s.prefillTokensPerSecond,
      decodeTokensPerSecond: s.decodeTokensPerSecond,
      decodeMsPerToken: s.decodeTokensPerSecond ? 1000 / s.decodeTokensPerSecond : 0,
      dispatchesPerToken,
      submitsPerToken: (s.submits - Math.ceil(s.promptTokens / engine.model.prefillChunk)) / decodeSteps,
      readbacksPerToken: s.readbacks / Math.max(1, s.generatedTokens),
      blockingReadbacksPerToken: s.stalls / decodeSteps,
      encodeMsPerToken,
      /** JS time to encode one dispatch of a decode step (pipeline, bind groups, dispatch), in microseconds. */
      encodeUsPerDispatch: dispatchesPerToken > 0 ? (encodeMsPerToken * 1000) / dispatchesPerToken : 0,
      /**
       * JS time to record one decode step with the GPU idle and nothing submitted: the encode cost alone, without the
       * submit or a software GPU's threads competing for the CPU (encodeMsPerToken is measured during generation).
       */
      recordMsPerToken,
      loadMs: s.loadMs,
      /** --verify: whether loadMs may include hashing the package (first-load, always) or never does. */
      verify,
      peakRssMB: 0,
    };
    if (errors.count > 0) {
      console.error(`bench: ${errors.count} WebGPU errors during the run (first: ${errors.first}); its figures are not valid.`);
      return 1;
    }
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    result.peakRssMB = peakRss / 2 ** 20;
    if (p.options.has('json')) console.log(JSON.stringify(result, null, 2));
    else {
      const lp = result.adapterKind === 'llvmpipe' ? ` (LP_NUM_THREADS=${result.lavapipeThreads ?? 'Mesa default'})` : '';
      console.log(`model ${result.model} (${result.weightDtypes.join('/')}) on ${result.adapter}${lp}`);
      const rows: [string, string][] = [
        ['adapter', `${result.adapterKind}: ${result.adapterReason}`],
        ['prefill', `${result.prefillTokensPerSecond.toFixed(2)} tok/s (${result.promptTokens} tokens)`],
        ['decode', `${result.decodeTokensPerSecond.toFixed(2)} tok/s, ${result.decodeMsPerToken.toFixed(2)} ms/token (${result.generatedTokens} tokens)`],
        ['dispatches/token', String(result.dispatchesPerToken)],
        ['submits/token', result.submitsPerToken.toFixed(2)],
        ['readbacks/token', `${result.readbacksPerToken.toFixed(2)} (blocking: ${result.blockingReadbacksPerToken.toFixed(2)})`],
        ['JS encode/token', `${result.encodeMsPerToken.toFixed(3)} ms`],
        ['JS encode/dispatch', `${result.encodeUsPerDispatch.toFixed(2)} µs`],
        ['JS record/token', `${result.recordMsPerToken.toFixed(3)} ms (GPU idle, no submit)`],
        ['load', `${(result.loadMs / 1000).toFixed(2)} s (--verify ${result.verify})`],
        ['peak RSS', `${result.peakRssMB.toFixed(0)} MB`],
      ];
      for (const [k, v] of rows) console.log(`  ${k.padEnd(18)} ${v}`);
    }
    return 0;
  } finally {
    progress.done();
    clearInterval(sampler);
    await engine.unload();
  }
}

/** Mean ms to record a decode step at `pos` into a command buffer that is never submitted (50 steps). */
function recordDecodeMs(engine: Engine, pos: number, steps = 50): number {
  const { device } = engine.gpu;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const encoder = device.createCommandEncoder({ label: 'bench.record' });
    const pass = encoder.beginComputePass({ label: 'bench.record' });
    engine.model.forward.encodeDecode(pass, pos);
    pass.end();
    encoder.finish();
  }
  return (performance.now() - t0) / steps;
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

/** Weight bytes a decode step reads: all tensors, less the embedding table unless it is also the classifier (one row of it is negligible). */
export function weightBytesPerToken(manifest: Manifest): number {
  const tied = !manifest.tensors.some((t) => t.name === 'wcls');
  let bytes = 0;
  for (const t of manifest.tensors) {
    if (t.name === 'tokenEmbedding' && !tied) continue;
    for (const c of t.chunks) bytes += c.data.byteLength + (c.scales?.byteLength ?? 0);
  }
  return bytes;
}
