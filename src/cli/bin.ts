#!/usr/bin/env node
/** The `llama-webgpu` executable: dist/cli/bin.js after `npm run build`. */
import { inheritStderrTty, rerunWithFilteredStderr, runsInProcess } from './dawn-stderr.ts';
import { main } from './main.ts';

if (!runsInProcess()) {
  // Dawn's fixed limit notices go to stderr from C++; the command runs in a child whose stderr is filtered.
  process.exitCode = await rerunWithFilteredStderr();
} else {
  inheritStderrTty();
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err) {
    // Library errors carry a message that names what failed and what to do; anything else keeps its stack.
    const typed = err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
    console.error(typed ? `${err.name}: ${err.message}` : err instanceof Error ? err.stack : err);
    process.exitCode = 1;
  }
}
