/**
 * The Node command line (`llama-webgpu`, package.json "bin"): src/cli/bin.ts built for Node into dist/cli/, with
 * the WGSL sources inlined as strings and npm dependencies left as imports.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  publicDir: false,
  build: {
    ssr: fileURLToPath(new URL('./src/cli/bin.ts', import.meta.url)),
    outDir: 'dist/cli',
    emptyOutDir: true,
    target: 'node20',
    minify: false,
    // The entry's shebang line is kept by the bundler.
    rolldownOptions: { output: { entryFileNames: 'bin.js' } },
  },
});
