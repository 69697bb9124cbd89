/**
 * llama-webgpu synth <out-dir> --shape tiny|tinyllama|llama2-7b|llama2-13b|llama2-70b [--quant q4|q4-pure|q8|f16|f32|q4_k_m] [--layers N] [--shard-mb N]
 *
 * Writes a package with deterministic random weights in a real architecture's shapes, so real sizes can be loaded
 * and timed without real weights. The tokenizer is a byte-fallback vocab of the model's size. --quant q4_k_m
 * quantizes the weights into llama.cpp's Q4_K_M mix of k-quant blocks and keeps them (what converting such a GGUF
 * with --quant keep gives).
 */
import { LlamaWebGpuError } from '../errors.ts';
import { directorySink } from '../formats/node-sink.ts';
import { convertCheckpoint } from '../formats/package-writer.ts';
import { QUANT_SCHEMES } from '../formats/quant-plan.ts';
import { SYNTH_SHAPES, synthCheckpoint, withQ4KMix, type SynthShape } from '../model/synthetic.ts';
import { choiceOption, numberOption, parseArgs, UsageError } from './args.ts';

const SYNTH_QUANTS = [...QUANT_SCHEMES, 'q4_k_m'] as const;
export const USAGE = `usage: llama-webgpu synth <out-dir> --shape ${Object.keys(SYNTH_SHAPES).join('|')} [--quant ${SYNTH_QUANTS.join('|')}] [--layers N] [--shard-mb N]`;

export async function run(args: string[]): Promise<number> {
  let out: string, shape: SynthShape, quant: (typeof SYNTH_QUANTS)[number], layers: number | undefined, shardMb: number;
  try {
    const p = parseArgs(args, { values: ['shape', 'quant', 'layers', 'shard-mb'] });
    if (p.positional.length !== 1) throw new UsageError('expected <out-dir>');
    out = p.positional[0];
    shape = String(p.options.get('shape') ?? '') as SynthShape;
    if (!(shape in SYNTH_SHAPES)) throw new UsageError(`--shape must be one of ${Object.keys(SYNTH_SHAPES).join(', ')}`);
    quant = choiceOption(p, 'quant', SYNTH_QUANTS, 'q4');
    layers = numberOption(p, 'layers');
    if (layers !== undefined && !(Number.isInteger(layers) && layers > 0)) throw new UsageError('--layers must be a positive integer');
    shardMb = numberOption(p, 'shard-mb', 64);
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const started = performance.now();
  try {
    const ckpt = quant === 'q4_k_m' ? withQ4KMix(synthCheckpoint(shape, layers)) : synthCheckpoint(shape, layers);
    let lastPct = -1;
    const manifest = await convertCheckpoint(ckpt, await directorySink(out), {
      quant: quant === 'q4_k_m' ? 'keep' : quant,
      shardBytes: Math.round(shardMb * 1024 * 1024),
      name: `synthetic ${shape}${layers ? ` (${layers} layers)` : ''} ${quant}`,
      onProgress: ({ done, total, bytes }) => {
        const pct = Math.floor((100 * done) / total);
        if (pct !== lastPct) {
          lastPct = pct;
          process.stderr.write(`\r${String(pct).padStart(3)}%  ${(bytes / 1e6).toFixed(0)} MB`);
        }
      },
    });
    const bytes = manifest.shards.reduce((a, s) => a + s.byteSize, 0);
    process.stderr.write('\n');
    console.log(`wrote ${out}: ${manifest.tensors.length} tensors, ${manifest.shards.length} shards, ${(bytes / 1e6).toFixed(1)} MB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  } catch (e) {
    if (e instanceof LlamaWebGpuError) {
      console.error(`synth failed: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
