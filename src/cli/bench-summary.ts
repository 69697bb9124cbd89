/**
 * llama-webgpu bench-summary <file.json>... [--gpu-name NAME] [--bandwidth-gbs N]
 *
 * A Markdown summary of `bench --json` and `bench-kernels --json` outputs (told apart by their fields): each model
 * run's prefill and decode rate with its weight bytes per token, and the decode rate as a share of the card's memory
 * bandwidth roofline (bytes read per token at full bandwidth); each kernel's GB/s and its share of the bandwidth.
 * The bandwidth comes from --bandwidth-gbs, else from the card's name (the adapter's, or --gpu-name) in
 * CARD_BANDWIDTH; an unknown card is named as such and no share is printed. With runs of two or more layer counts
 * of one shape, decode time per token is fitted as a + b * layers and the fit's value at the full depth is printed.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, UsageError } from './args.ts';

export const USAGE = 'usage: llama-webgpu bench-summary <bench.json|bench-kernels.json>... [--gpu-name NAME] [--bandwidth-gbs N] [--full-layers N]';

/** Peak memory bandwidth by card name (vendor datasheets), most specific pattern first. */
export const CARD_BANDWIDTH: { pattern: RegExp; card: string; bytesPerSecond: number }[] = [
  { pattern: /H200/i, card: 'NVIDIA H200 (HBM3e)', bytesPerSecond: 4.8e12 },
  { pattern: /H100.*NVL/i, card: 'NVIDIA H100 NVL', bytesPerSecond: 3.9e12 },
  { pattern: /H100.*PCIe/i, card: 'NVIDIA H100 PCIe', bytesPerSecond: 2.0e12 },
  { pattern: /H100/i, card: 'NVIDIA H100 SXM', bytesPerSecond: 3.35e12 },
];

/** The card's peak bandwidth from its name, or undefined for a card not in CARD_BANDWIDTH. */
export function cardBandwidth(name: string): { card: string; bytesPerSecond: number } | undefined {
  const hit = CARD_BANDWIDTH.find((c) => c.pattern.test(name));
  return hit && { card: hit.card, bytesPerSecond: hit.bytesPerSecond };
}

/** The fields of `bench --json` this summary reads. */
export interface BenchRun {
  model: string;
  adapter: string;
  adapterReason?: string;
  adapterInfo?: { vendor: string; architecture: string; device: string; description: string };
  shaderF16?: boolean;
  config: { nLayers: number; dim: number };
  weightBytesPerToken: number;
  promptTokens: number;
  generatedTokens: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  decodeMsPerToken: number;
  dispatchesPerToken: number;
  encodeMsPerToken: number;
  encodeUsPerDispatch: number;
  submitsPerToken: number;
  loadMs: number;
}

/** The fields of `bench-kernels --json` this summary reads. */
export interface KernelsRun {
  adapter: { description: string; device: string; f16?: boolean };
  kernels: { name: string; msPerDispatch: number; bytes: number; gbps: number }[];
  /** The synth shape the kernels ran at (absent in output from before `--shape`: Llama 2 7B). */
  shape?: string;
  /** Kernels whose output failed the check against the float64 reference, so they have no time. */
  failed?: { name: string; what: string; where: string; got: number; want: number; tolerance: number }[];
}

/** Least-squares a + b * x through the points; undefined with fewer than two distinct x. */
export function linearFit(points: [number, number][]): { a: number; b: number } | undefined {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  if (n < 2 || sxx === 0) return undefined;
  const b = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx;
  return { a: my - b * mx, b };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The summary text. `bandwidth` overrides the card table (bytes/s). */
export function summarize(
  benches: BenchRun[],
  kernels: KernelsRun | undefined,
  options: { gpuName?: string; bandwidth?: number; fullLayers?: number } = {},
): string {
  const lines: string[] = ['# llama-webgpu device bench', ''];
  // Dawn's description is often the driver's ("NVIDIA: 580.x"); its device field is the card's name as a slug
  // ("nvidia-h100-80gb-hbm3"). Any of them, or nvidia-smi's name (--gpu-name), may name the card.
  const names = [
    options.gpuName,
    ...benches.flatMap((b) => [b.adapterInfo?.device, b.adapterInfo?.description, b.adapter]),
    kernels?.adapter.device,
    kernels?.adapter.description,
  ].filter((n): n is string => Boolean(n));
  const unique = [...new Set(names)];
  const name = unique.join(' / ') || 'unknown adapter';
  const known = unique.map(cardBandwidth).find(Boolean);
  const bandwidth = options.bandwidth ?? known?.bytesPerSecond;
  const f16 = benches[0]?.shaderF16 ?? kernels?.adapter.f16;
  lines.push(
    `adapter: ${name}${benches[0]?.adapterReason ? ` (${benches[0].adapterReason})` : ''}` +
      (f16 === undefined ? '' : f16 ? '; shader-f16 in use' : '; no shader-f16 (f32 kernel paths)'),
  );
  lines.push(
    options.bandwidth
      ? `memory bandwidth: ${(options.bandwidth / 1e12).toFixed(2)} TB/s (given)`
      : known
        ? `memory bandwidth: ${(known.bytesPerSecond / 1e12).toFixed(2)} TB/s (${known.card}, vendor datasheet)`
        : `memory bandwidth: unknown for "${name}" (not in the card table: H100 SXM/PCIe/NVL, H200); no roofline shares`,
  );
  lines.push('');
  if (benches.length > 0) {
    lines.push('## Model runs (bench)', '');
    lines.push('| model | layers | weights MB/token | prefill tok/s | decode tok/s | decode ms/token | decode GB/s | roofline ms/token | % of roofline | dispatches/token | JS encode ms/token | µs/dispatch |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const b of benches) {
      const gbps = (b.weightBytesPerToken * b.decodeTokensPerSecond) / 1e9;
      const roofMs = bandwidth ? (b.weightBytesPerToken / bandwidth) * 1000 : undefined;
      lines.push(
        `| ${b.model} | ${b.config.nLayers} | ${(b.weightBytesPerToken / 1e6).toFixed(b.weightBytesPerToken < 1e8 ? 2 : 0)} | ${b.prefillTokensPerSecond.toFixed(1)} | ` +
          `${b.decodeTokensPerSecond.toFixed(2)} | ${b.decodeMsPerToken.toFixed(2)} | ${gbps.toFixed(1)} | ` +
          `${roofMs === undefined ? 'n/a' : roofMs.toFixed(3)} | ${roofMs === undefined ? 'n/a' : pct(roofMs / b.decodeMsPerToken)} | ` +
          `${b.dispatchesPerToken} | ${b.encodeMsPerToken.toFixed(3)} | ${b.encodeUsPerDispatch.toFixed(2)} |`,
      );
    }
    lines.push('');
    lines.push('Roofline: weight bytes read per decoded token at the full memory bandwidth; % of roofline = roofline ms/token ÷ measured ms/token.');
    for (const b of benches) {
      lines.push(`- ${b.model}: JS encode is ${pct(b.encodeMsPerToken / b.decodeMsPerToken)} of decode time (${b.dispatchesPerToken} dispatches, ${b.submitsPerToken.toFixed(2)} submits per token; load ${(b.loadMs / 1000).toFixed(1)} s).`);
    }
    const byDim = new Map<number, BenchRun[]>();
    for (const b of benches) byDim.set(b.config.dim, [...(byDim.get(b.config.dim) ?? []), b]);
    for (const runs of byDim.values()) {
      const fit = linearFit(runs.map((r) => [r.config.nLayers, r.decodeMsPerToken]));
      if (!fit) continue;
      const full = options.fullLayers ?? Math.max(...runs.map((r) => r.config.nLayers));
      const bytesFit = linearFit(runs.map((r) => [r.config.nLayers, r.weightBytesPerToken]));
      const ms = fit.a + fit.b * full;
      const measured = runs.find((r) => r.config.nLayers === full);
      lines.push('');
      lines.push(
        `Fit over ${runs.map((r) => r.config.nLayers).join(', ')} layers: decode ms/token = ${fit.a.toFixed(3)} + ${fit.b.toFixed(4)} × layers; ` +
          `at ${full} layers ${ms.toFixed(2)} ms/token (${(1000 / ms).toFixed(1)} tok/s${measured ? `; measured ${measured.decodeMsPerToken.toFixed(2)}` : ', not measured'})` +
          (bytesFit && bandwidth ? `, ${pct(((bytesFit.a + bytesFit.b * full) / bandwidth) * 1000 / ms)} of roofline` : '') +
          `. Per layer: ${(fit.b * 1000).toFixed(1)} µs` +
          (bytesFit && bandwidth ? ` against ${((bytesFit.b / bandwidth) * 1e6).toFixed(1)} µs at full bandwidth` : '') +
          '.',
      );
    }
    lines.push('');
  }
  if (kernels) {
    lines.push(`## Kernels at ${kernels.shape ?? 'llama2-7b'} shapes (bench-kernels)`, '');
    lines.push('| kernel | ms/dispatch | GB/s | % of bandwidth |');
    lines.push('|---|---|---|---|');
    for (const k of kernels.kernels) {
      lines.push(`| ${k.name} | ${k.msPerDispatch.toFixed(4)} | ${k.gbps.toFixed(1)} | ${bandwidth ? pct((k.gbps * 1e9) / bandwidth) : 'n/a'} |`);
    }
    for (const f of kernels.failed ?? []) {
      lines.push(`| ${f.name} | wrong output, not timed: ${f.what} at ${f.where} = ${f.got}, expected ${f.want} (tolerance ${f.tolerance}) | | |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

export async function run(args: string[]): Promise<number> {
  let p;
  try {
    p = parseArgs(args, { values: ['gpu-name', 'bandwidth-gbs', 'full-layers'] });
    if (p.positional.length === 0) throw new UsageError('expected at least one JSON file');
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const benches: BenchRun[] = [];
  let kernels: KernelsRun | undefined;
  for (const file of p.positional) {
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      console.error(`bench-summary: ${file} is not readable JSON (${(e as Error).message}); pass the output of bench --json or bench-kernels --json.`);
      return 1;
    }
    if (data && typeof data === 'object' && 'decodeTokensPerSecond' in data) benches.push(data as BenchRun);
    else if (data && typeof data === 'object' && 'kernels' in data) kernels = data as KernelsRun;
    else {
      console.error(`bench-summary: ${file} is neither bench --json nor bench-kernels --json output.`);
      return 1;
    }
  }
  const gbs = p.options.get('bandwidth-gbs');
  const full = p.options.get('full-layers');
  console.log(
    summarize(benches, kernels, {
      gpuName: typeof p.options.get('gpu-name') === 'string' ? String(p.options.get('gpu-name')) : undefined,
      bandwidth: typeof gbs === 'string' && Number(gbs) > 0 ? Number(gbs) * 1e9 : undefined,
      fullLayers: typeof full === 'string' && Number(full) > 0 ? Number(full) : undefined,
    }),
  );
  return 0;
}
