#!/usr/bin/env node
/** The `llama-webgpu` executable: dist/cli/bin.js after `npm run build`. */
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
