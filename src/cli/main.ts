/**
 * `llama-webgpu <command> [args]`: the Node command line. Each command lives in its own module with a
 * `run(args): Promise<number>` that returns the exit status and a `USAGE` line. Exit status: 0 success (and
 * --help), 1 bad input (a missing package, a malformed model), 2 usage errors.
 */
import { CliError, UsageError, wantsHelp } from './args.ts';

type Command = {
  summary: string;
  load: () => Promise<{ USAGE: string; run(args: string[]): Promise<number> }>;
  /** The command takes its arguments verbatim (no options). */
  verbatim?: boolean;
};

const commands: Record<string, Command> = {
  generate: { summary: 'generate text from a model package', load: () => import('./generate.ts') },
  chat: { summary: 'a conversation (scripted or on stdin) that reuses the KV cache from turn to turn', load: () => import('./chat.ts') },
  bench: { summary: 'prefill/decode speed and per-token overheads of a model package', load: () => import('./bench.ts') },
  convert: { summary: 'convert a GGUF, llama2.c, safetensors or Flax checkpoint into a model package', load: () => import('./convert.ts') },
  info: { summary: 'config, tensor count and bytes by dtype of a package or checkpoint', load: () => import('./info.ts') },
  eval: { summary: 'perplexity of a text under a package, and top-1 agreement with a reference package', load: () => import('./eval.ts') },
  tokenize: { summary: 'print the token ids of a text (no BOS) as JSON', load: () => import('./tokenize.ts'), verbatim: true },
  synth: { summary: 'write a random-weight package in a real Llama 2 shape (tiny ... llama2-70b)', load: () => import('./synth.ts') },
  'bench-kernels': { summary: 'check every kernel against its float64 reference, then time it (Llama 2 7B shapes)', load: () => import('./bench-kernels.ts') },
  'bench-summary': { summary: 'Markdown summary of bench/bench-kernels JSON with roofline shares', load: () => import('./bench-summary.ts') },
  'bench-encode': { summary: 'JS cost per call of setPipeline, setBindGroup, dispatchWorkgroups (Node, --browser)', load: () => import('./bench-encode.ts') },
};

function printCommands(print: (line: string) => void): void {
  print('usage: llama-webgpu <command> [options]\n\ncommands:');
  for (const [n, c] of Object.entries(commands)) print(`  ${n.padEnd(16)} ${c.summary}`);
  print('\nllama-webgpu <command> --help prints the options of a command.');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    printCommands(console.log);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`unknown command "${name}"`);
    printCommands(console.error);
    return 2;
  }
  const mod = await command.load();
  // tokenize takes its text verbatim, so only a leading --help asks for its usage.
  if (command.verbatim ? args.length === 1 && wantsHelp(args) : wantsHelp(args)) {
    console.log(`llama-webgpu ${name}: ${command.summary}\n${mod.USAGE}`);
    return 0;
  }
  try {
    return await mod.run(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${e.message}\n${mod.USAGE}`);
      return 2;
    }
    if (e instanceof CliError) {
      console.error(e.message);
      return 1;
    }
    throw e;
  }
}
