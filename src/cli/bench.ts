/**
 * llama-webgpu bench <package-dir> [--prompt-tokens N] [--gen-tokens N] [--adapter llvmpipe|swiftshader|default] [--json]
 *
 * Prefill and decode speed of a model package on this machine's GPU, with the per-token overheads that bound
 * small models: dispatches, submits, readbacks (and how many stalled the CPU), JS encode time; plus load time
 * and peak memory.
 */
import { numberOption, parseArgs, UsageError } from './args.ts';
import { openPackageDir } from './open-model.ts';
import type { NodeAdapterName } from '../gpu/node.ts';

export async function run(args: string[]): Promise<number> {
  let p;
  try {
    p = parseArgs(args, { values: ['prompt-tokens', 'gen-tokens', 'adapter', 'context', 'prefill-chunk'], flags: ['json'] });
    if (p.positional.length !== 1) throw new UsageError('expected one <package-dir>');
  } catch (e) {
    console.error(`${(e as Error).message}\nusage: llama-webgpu bench <package-dir> [--prompt-tokens N] [--gen-tokens N] [--adapter NAME] [--json]`);
    return 2;
  }
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const promptTokens = numberOption(p, 'prompt-tokens', 128);
  const genTokens = numberOption(p, 'gen-tokens', 32);
  const engine = await openPackageDir(p.positional[0], {
    adapter: p.options.get('adapter') as NodeAdapterName | undefined,
    contextLength: numberOption(p, 'context', Math.max(256, promptTokens + genTokens + 1)),
    prefillChunk: numberOption(p, 'prefill-chunk'),
  });
  try {
    const c = engine.config;
    // Deterministic prompt of ordinary token ids (ids past the control and byte pieces).
    const ids = [c.bosId];
    for (let i = 1; i < promptTokens; i++) ids.push(259 + ((i * 7919) % Math.max(1, c.vocabSize - 259)));
    // Warm-up with the same prompt: compiles pipelines, touches every weight once, and times a prefill and a few
    // steps the way a second request in a session would find them (the generation loop paces its readbacks by them).
    for await (const _ of engine.generate(ids, { maxTokens: 4, temperature: 0, stopTokenIds: [] })) void _;
    const stream = engine.generate(ids, { maxTokens: genTokens, temperature: 0, stopTokenIds: [] });
    for await (const _ of stream) void _;
    const s = await stream.result;
    const decodeSteps = Math.max(1, s.generatedTokens - 1);
    const result = {
      model: engine.manifest.name,
      adapter: engine.gpu.summary.description || engine.gpu.summary.device,
      /** Mesa lavapipe's compute threads (LP_NUM_THREADS; src/gpu/node.ts lavapipeThreads), null for Mesa's default. */
      lavapipeThreads: process.env.LP_NUM_THREADS ?? null,
      config: { dim: c.dim, hiddenDim: c.hiddenDim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads, vocabSize: c.vocabSize },
      weightDtypes: [...new Set(engine.manifest.tensors.filter((t) => t.shape.length === 2).map((t) => t.dtype))],
      promptTokens: s.promptTokens,
      generatedTokens: s.generatedTokens,
      prefillTokensPerSecond: s.prefillTokensPerSecond,
      decodeTokensPerSecond: s.decodeTokensPerSecond,
      decodeMsPerToken: s.decodeTokensPerSecond ? 1000 / s.decodeTokensPerSecond : 0,
      dispatchesPerToken: engine.model.forward.dispatchesPerDecode,
      submitsPerToken: (s.submits - Math.ceil(s.promptTokens / engine.model.prefillChunk)) / decodeSteps,
      readbacksPerToken: s.readbacks / Math.max(1, s.generatedTokens),
      blockingReadbacksPerToken: s.stalls / decodeSteps,
      encodeMsPerToken: s.encodeMs / decodeSteps,
      loadMs: s.loadMs,
      peakRssMB: 0,
    };
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    result.peakRssMB = peakRss / 2 ** 20;
    if (p.options.has('json')) console.log(JSON.stringify(result, null, 2));
    else {
      const lp = /llvmpipe/i.test(result.adapter) ? ` (LP_NUM_THREADS=${result.lavapipeThreads ?? 'Mesa default'})` : '';
      console.log(`model ${result.model} (${result.weightDtypes.join('/')}) on ${result.adapter}${lp}`);
      const rows: [string, string][] = [
        ['prefill', `${result.prefillTokensPerSecond.toFixed(2)} tok/s (${result.promptTokens} tokens)`],
        ['decode', `${result.decodeTokensPerSecond.toFixed(2)} tok/s, ${result.decodeMsPerToken.toFixed(2)} ms/token (${result.generatedTokens} tokens)`],
        ['dispatches/token', String(result.dispatchesPerToken)],
        ['submits/token', result.submitsPerToken.toFixed(2)],
        ['readbacks/token', `${result.readbacksPerToken.toFixed(2)} (blocking: ${result.blockingReadbacksPerToken.toFixed(2)})`],
        ['JS encode/token', `${result.encodeMsPerToken.toFixed(3)} ms`],
        ['load', `${(result.loadMs / 1000).toFixed(2)} s`],
        ['peak RSS', `${result.peakRssMB.toFixed(0)} MB`],
      ];
      for (const [k, v] of rows) console.log(`  ${k.padEnd(18)} ${v}`);
    }
    return 0;
  } finally {
    clearInterval(sampler);
    await engine.unload();
  }
}
