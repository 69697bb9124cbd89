#!/usr/bin/env node
// Runs a TypeScript entry point (src/cli/*.ts) in Node through Vite's module runner, so sources, WGSL imports
// and import.meta.glob resolve exactly as they do in the browser build and in the tests.
//   node scripts/run.mjs src/cli/main.ts <args...>
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { startModuleRunner } from './module-runner.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run.mjs <entry.ts> [args...]');
  process.exit(2);
}
const ownArgv = process.argv.slice(1);
process.argv = [process.argv[0], path.resolve(entry), ...args];
const runner = await startModuleRunner(root);
let code = 0;
try {
  // Dawn's fixed limit notices go to stderr from C++: the entry runs in a child whose stderr is filtered.
  const dawnStderr = await runner.import(path.join(root, 'src/cli/dawn-stderr.ts'));
  if (!dawnStderr.runsInProcess()) {
    code = await dawnStderr.rerunWithFilteredStderr(ownArgv);
  } else {
    dawnStderr.inheritStderrTty();
    const mod = await runner.import(path.resolve(entry));
    if (typeof mod.main === 'function') code = (await mod.main(args)) ?? 0;
  }
} catch (err) {
  console.error(err instanceof Error ? (err.name.endsWith('Error') && err.code ? `${err.name}: ${err.message}` : err.stack) : err);
  code = 1;
} finally {
  await runner.close();
}
process.exit(code);
