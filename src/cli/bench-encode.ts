/**
 * llama-webgpu bench-encode [--adapter llvmpipe|swiftshader|default] [--dispatches N] [--rounds R] [--browser] [--json]
 *
 * The JavaScript cost of one call of each compute-pass encoding method, the per-dispatch overhead under every
 * decode step (bench's "JS encode/dispatch"): N calls of setPipeline alone, of setBindGroup alone, of
 * dispatchWorkgroups alone, and of all three per dispatch (the engine's pattern), each timed in its own pass, then
 * pass.end + finish, queue.submit, and the wait for the GPU. The pipeline is ADD_WGSL, x += y on 64 elements (one
 * workgroup): the GPU work is negligible, so the figures are the API's. The median of R rounds after one warm-up
 * round. --browser runs the same code in headless Chromium (/usr/bin/chromium, or $LLAMA_WEBGPU_CHROMIUM) too.
 */
import { parseArgs, numberOption, UsageError } from './args.ts';
import { openNodeGpu, resolveAdapterRequest } from '../gpu/node.ts';
import { WebGpuUnavailableError } from '../errors.ts';

export const USAGE = 'usage: llama-webgpu bench-encode [--adapter llvmpipe|swiftshader|default] [--dispatches N] [--rounds R] [--browser] [--json]';

/** The measured kernel: x += y over params.dim elements, one thread each. */
export const ADD_WGSL = `
override WG: u32 = 64u;
struct Params { dim: u32 }
@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x < params.dim) {
    x[gid.x] += y[gid.x];
  }
}
`;

/** Microseconds per call (the loops) and milliseconds per pass (the rest), medians over the rounds. */
export interface EncodeCost {
  dispatches: number;
  rounds: number;
  usPerCall: { setPipeline: number; setBindGroup: number; dispatchWorkgroups: number; allThree: number };
  msPerPass: { endAndFinish: number; submit: number; gpuWait: number };
}

/**
 * Measures EncodeCost on `device`. Self-contained (no imports, no outer names) so that its source text also runs
 * in a browser page.
 */
export async function measureEncodeCost(device: GPUDevice, code: string, dispatches: number, rounds: number): Promise<EncodeCost> {
  const layout = device.createBindGroupLayout({
    label: 'bench-encode.layout',
    entries: [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } },
      { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
      { binding: 2, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
    ],
  });
  const module = device.createShaderModule({ label: 'bench-encode.add', code });
  // Two pipelines and two bind groups, alternated, so no call repeats the state already set.
  const pipelines = [64, 128].map((wg) =>
    device.createComputePipeline({
      label: `bench-encode.add.wg${wg}`,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main', constants: { WG: wg } },
    }),
  );
  const storage = () => device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE });
  const params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(params, 0, new Uint32Array([64, 0, 0, 0]));
  const bindGroups = [0, 1].map((i) =>
    device.createBindGroup({
      label: `bench-encode.bind${i}`,
      layout,
      entries: [
        { binding: 0, resource: { buffer: storage() } },
        { binding: 1, resource: { buffer: storage() } },
        { binding: 2, resource: { buffer: params } },
      ],
    }),
  );
  type Loop = (pass: GPUComputePassEncoder) => void;
  const loops: Record<'setPipeline' | 'setBindGroup' | 'dispatchWorkgroups' | 'allThree', Loop> = {
    setPipeline: (pass) => {
      for (let i = 0; i < dispatches; i++) pass.setPipeline(pipelines[i & 1]);
    },
    setBindGroup: (pass) => {
      for (let i = 0; i < dispatches; i++) pass.setBindGroup(0, bindGroups[i & 1]);
    },
    dispatchWorkgroups: (pass) => {
      for (let i = 0; i < dispatches; i++) pass.dispatchWorkgroups(1);
    },
    allThree: (pass) => {
      for (let i = 0; i < dispatches; i++) {
        pass.setPipeline(pipelines[i & 1]);
        pass.setBindGroup(0, bindGroups[i & 1]);
        pass.dispatchWorkgroups(1);
      }
    },
  };
  const samples: Record<string, number[]> = {};
  const add = (k: string, v: number) => (samples[k] ??= []).push(v);
  for (let round = 0; round <= rounds; round++) {
    for (const [name, loop] of Object.entries(loops)) {
      const encoder = device.createCommandEncoder({ label: `bench-encode.${name}` });
      const pass = encoder.beginComputePass();
      // dispatchWorkgroups alone needs a pipeline and bind group set once first.
      if (name === 'dispatchWorkgroups') {
        pass.setPipeline(pipelines[0]);
        pass.setBindGroup(0, bindGroups[0]);
      }
      const t0 = performance.now();
      loop(pass);
      const t1 = performance.now();
      pass.end();
      const commands = encoder.finish();
      const t2 = performance.now();
      device.queue.submit([commands]);
      const t3 = performance.now();
      await device.queue.onSubmittedWorkDone();
      const t4 = performance.now();
      if (round === 0) continue; // warm-up
      add(name, ((t1 - t0) * 1000) / dispatches);
      if (name === 'allThree') {
        add('endAndFinish', t2 - t1);
        add('submit', t3 - t2);
        add('gpuWait', t4 - t3);
      }
    }
  }
  const median = (k: string) => {
    const v = [...samples[k]].sort((a, b) => a - b);
    return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  return {
    dispatches,
    rounds,
    usPerCall: {
      setPipeline: median('setPipeline'),
      setBindGroup: median('setBindGroup'),
      dispatchWorkgroups: median('dispatchWorkgroups'),
      allThree: median('allThree'),
    },
    msPerPass: { endAndFinish: median('endAndFinish'), submit: median('submit'), gpuWait: median('gpuWait') },
  };
}

/** The same measurement in headless Chromium's WebGPU; returns its adapter's description with the figures. */
async function measureInChromium(code: string, dispatches: number, rounds: number): Promise<{ adapter: string; cost: EncodeCost }> {
  // Loaded here, not at the top: playwright-core is a development dependency, and the other commands run without it.
  const { CHROMIUM, launchChromium } = await import('./browser/chromium.ts');
  const browser = await launchChromium('swiftshader');
  // WebGPU needs a secure context: an empty page served from 127.0.0.1, cross-origin isolated so that
  // performance.now() has microsecond rather than 100 µs resolution.
  const { createServer } = await import('node:http');
  const headers = { 'content-type': 'text/html', 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  const server = createServer((_req, res) => res.writeHead(200, headers).end('<!doctype html><title>bench-encode</title>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
    const script = `(async () => {
      const measure = ${measureEncodeCost.toString()};
      if (!navigator.gpu) return { error: 'navigator.gpu is missing' };
      const adapter = await navigator.gpu.requestAdapter();
      if (!adapter) return { error: 'no WebGPU adapter' };
      const device = await adapter.requestDevice();
      const cost = await measure(device, ${JSON.stringify(code)}, ${dispatches}, ${rounds});
      return { adapter: adapter.info.description || adapter.info.device || adapter.info.architecture, cost };
    })()`;
    const result = (await page.evaluate(script)) as { error?: string; adapter: string; cost: EncodeCost };
    if (result.error) {
      throw new WebGpuUnavailableError(`Chromium (${CHROMIUM}) has no WebGPU here: ${result.error}. Run scripts/setup-system.sh, or set LLAMA_WEBGPU_CHROMIUM.`);
    }
    return result;
  } finally {
    await browser.close();
    server.close();
  }
}

function print(where: string, adapter: string, c: EncodeCost): void {
  console.log(`${where} on ${adapter}: ${c.dispatches} calls per pass, median of ${c.rounds} rounds`);
  for (const [k, v] of Object.entries(c.usPerCall)) console.log(`  ${(k === 'allThree' ? 'all three' : k).padEnd(20)} ${v.toFixed(3).padStart(9)} µs/call`);
  console.log(`  ${'end + finish'.padEnd(20)} ${c.msPerPass.endAndFinish.toFixed(3).padStart(9)} ms/pass`);
  console.log(`  ${'queue.submit'.padEnd(20)} ${c.msPerPass.submit.toFixed(3).padStart(9)} ms/pass`);
  console.log(`  ${'GPU wait'.padEnd(20)} ${c.msPerPass.gpuWait.toFixed(3).padStart(9)} ms/pass (${c.dispatches} one-workgroup dispatches)`);
}

export async function run(args: string[]): Promise<number> {
  let p;
  try {
    p = parseArgs(args, { values: ['adapter', 'dispatches', 'rounds'], flags: ['browser', 'json'] });
    if (p.positional.length > 0) throw new UsageError(`unexpected argument ${p.positional[0]}`);
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const dispatches = numberOption(p, 'dispatches', 10_000);
  const rounds = numberOption(p, 'rounds', 5);
  const adapterOption = p.options.get('adapter');
  const request = resolveAdapterRequest(typeof adapterOption === 'string' ? adapterOption : undefined);
  const code = ADD_WGSL;
  const { gpu, choice } = await openNodeGpu(request.name, { source: request.source });
  const node = { adapter: gpu.summary.description || gpu.summary.device, adapterReason: choice.reason, ...(await measureEncodeCost(gpu.device, code, dispatches, rounds)) };
  gpu.destroy();
  const chromium = p.options.has('browser') ? await measureInChromium(code, dispatches, rounds) : undefined;
  if (p.options.has('json')) {
    console.log(JSON.stringify({ node, chromium: chromium ? { adapter: chromium.adapter, ...chromium.cost } : undefined }, null, 2));
  } else {
    print('Node (Dawn)', `${node.adapter} (${node.adapterReason})`, node);
    if (chromium) print('Chromium', chromium.adapter, chromium.cost);
  }
  return 0;
}
