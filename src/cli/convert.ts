/**
 * llama-webgpu convert <input> <out-dir> [--quant q4|q4-pure|q8|f16|f32|keep] [--tokenizer <file>] [--shard-mb N] [--name <text>]
 * <input>: a .gguf file, a llama2.c .bin (with --tokenizer), a Hugging Face safetensors folder, or a Flax folder or
 * flax_model.msgpack. Writes the package atomically: <out-dir> appears only when the whole package is written.
 * An http(s) URL of any of those (or of a Hugging Face repository) streams it with Range requests (convert-url.ts).
 * --quant q4 (the default) is the 4-bit mix of src/formats/quant-plan.ts; q4-pure puts every matrix at 4 bits.
 * --quant keep (the default for a GGUF with quantized tensors) keeps a GGUF's blocks as they are (src/formats/keep.ts).
 */
import { LlamaWebGpuError } from '../errors.ts';
import { openCheckpoint } from '../formats/detect.ts';
import { directorySink } from '../formats/node-sink.ts';
import { hasQuantizedGgufTensors } from '../formats/keep.ts';
import { convertCheckpoint } from '../formats/package-writer.ts';
import { CONVERT_QUANTS, type ConvertQuant } from '../formats/quant-plan.ts';
import { choiceOption, numberOption, parseArgs, UsageError } from './args.ts';

export const USAGE = 'usage: llama-webgpu convert <input> <out-dir> [--quant q4|q4-pure|q8|f16|f32|keep] [--tokenizer <file>] [--shard-mb N] [--name <text>]';

export async function run(args: string[]): Promise<number> {
  let input: string, out: string, quant: ConvertQuant | undefined, shardMb: number;
  let p;
  try {
    p = parseArgs(args, { values: ['quant', 'tokenizer', 'shard-mb', 'name'] });
    if (p.positional.length !== 2) throw new UsageError('expected <input> and <out-dir>');
    [input, out] = p.positional;
    quant = p.options.has('quant') ? choiceOption(p, 'quant', CONVERT_QUANTS, 'q4') : undefined;
    shardMb = numberOption(p, 'shard-mb', 64);
    if (!(shardMb > 0)) throw new UsageError('--shard-mb must be positive');
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const tokenizer = p.options.get('tokenizer');
  const name = p.options.get('name');
  const started = performance.now();
  try {
    if (/^https?:\/\//i.test(input)) {
      const { convertUrl } = await import('./convert-url.ts');
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      return await convertUrl(input, out, { quant, tokenizer: str(tokenizer), name: str(name), shardBytes: Math.round(shardMb * 1024 * 1024) });
    }
    const ckpt = await openCheckpoint(input, { tokenizer: typeof tokenizer === 'string' ? tokenizer : undefined });
    try {
      const c = ckpt.config;
      quant ??= hasQuantizedGgufTensors(ckpt) ? 'keep' : 'q4';
      console.error(`${ckpt.format}: dim ${c.dim}, ${c.nLayers} layers, ${c.nHeads}/${c.nKvHeads} heads, vocab ${c.vocabSize} -> ${quant}`);
      let lastPct = -1;
      // A terminal gets one updating line; a log gets a line every 10%.
      const tty = process.stderr.isTTY === true;
      const manifest = await convertCheckpoint(ckpt, await directorySink(out), {
        quant,
        shardBytes: Math.round(shardMb * 1024 * 1024),
        name: typeof name === 'string' ? name : undefined,
        onProgress: ({ tensor, done, total, bytes }) => {
          const pct = Math.floor(((tty ? 100 : 10) * done) / total) * (tty ? 1 : 10);
          if (pct !== lastPct) {
            lastPct = pct;
            const line = `${String(pct).padStart(3)}%  ${(bytes / 1e6).toFixed(1)} MB  ${tensor}`;
            process.stderr.write(tty ? `\r${line.padEnd(40)}` : `${line}\n`);
          }
        },
      });
      const bytes = manifest.shards.reduce((a, s) => a + s.byteSize, 0);
      if (tty) process.stderr.write('\n');
      console.log(`wrote ${out}: ${manifest.tensors.length} tensors, ${manifest.shards.length} shards, ${(bytes / 1e6).toFixed(1)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      return 0;
    } finally {
      await ckpt.close();
    }
  } catch (e) {
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (e instanceof LlamaWebGpuError) {
      console.error(`convert failed: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
