/**
 * `llama-webgpu <command> [args]`: the Node command line. Each command lives in its own module with a
 * `run(args): Promise<number>` that returns the exit status.
 */
type Command = { summary: string; load: () => Promise<{ run(args: string[]): Promise<number> }> };

const commands: Record<string, Command> = {
  generate: { summary: 'generate text from a model package', load: () => import('./generate.ts') },
  bench: { summary: 'prefill/decode speed and per-token overheads of a model package', load: () => import('./bench.ts') },
  convert: { summary: 'convert a GGUF, llama2.c, safetensors or Flax checkpoint into a model package', load: () => import('./convert.ts') },
  info: { summary: 'config, tensor count and bytes by dtype of a package or checkpoint', load: () => import('./info.ts') },
  tokenize: { summary: 'print the token ids of a text (no BOS) as JSON', load: () => import('./tokenize.ts') },
  synth: { summary: 'write a random-weight package in a real Llama 2 shape (tiny ... llama2-70b)', load: () => import('./synth.ts') },
  'bench-kernels': { summary: 'time every kernel at Llama 2 7B decode shapes', load: () => import('./bench-kernels.ts') },
  'bench-summary': { summary: 'Markdown summary of bench/bench-kernels JSON with roofline shares', load: () => import('./bench-summary.ts') },
  'bench-encode': { summary: 'JS cost per call of setPipeline, setBindGroup, dispatchWorkgroups (Node, --browser)', load: () => import('./bench-encode.ts') },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const command = name ? commands[name] : undefined;
  if (!command) {
    console.log('usage: llama-webgpu <command> [options]\n\ncommands:');
    for (const [n, c] of Object.entries(commands)) console.log(`  ${n.padEnd(16)} ${c.summary}`);
    return name && name !== '--help' && name !== 'help' ? 2 : 0;
  }
  return (await command.load()).run(args);
}
