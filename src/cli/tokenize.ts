/**
 * `llama-webgpu tokenize <package-dir|tokenizer-file> <text>`: prints the token ids of <text> (no BOS) as a
 * JSON array. The file may be a tokenizer.model, a llama2.c tokenizer.bin or a .gguf; a directory means its
 * tokenizer.model.
 */
import { loadTokenizerFile } from '../tokenizer/node.ts';

export const USAGE = 'usage: llama-webgpu tokenize <package-dir|tokenizer-file> <text>';

export async function run(args: string[]): Promise<number> {
  // Both arguments are taken verbatim (no option parsing) so any text, even one starting with "--", can be tokenized.
  if (args.length !== 2) {
    console.error(`expected a tokenizer and a text, got ${args.length} arguments\n${USAGE}`);
    return 2;
  }
  const [file, text] = args;
  const tokenizer = await loadTokenizerFile(file);
  console.log(JSON.stringify(tokenizer.encode(text)));
  return 0;
}
