/**
 * The Node build of the library (`llama-webgpu/node`, and the "node" condition of `llama-webgpu`): src/node.ts for
 * Node into dist/node/, with the WGSL sources inlined as strings and npm dependencies, `webgpu` (an optional peer
 * dependency) and node: builtins left as imports.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  publicDir: false,
  build: {
    ssr: fileURLToPath(new URL('./src/node.ts', import.meta.url)),
    outDir: 'dist/node',
    emptyOutDir: true,
    target: 'node20',
    minify: false,
    sourcemap: true,
    rolldownOptions: { output: { entryFileNames: 'index.js', chunkFileNames: 'chunks/[name]-[hash].js' } },
  },
});
