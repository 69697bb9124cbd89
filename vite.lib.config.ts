/**
 * The library build (`npm run build`): src/index.ts as an ES module in dist/lib/, with the engine and store workers
 * as separate files beside it, and type declarations in dist/types/ (tsconfig.lib.json).
 *
 * Node-only modules (src/gpu/node.ts with the `webgpu` package, node:fs) are reached only through dynamic imports
 * under Node, so they land in chunks that a browser never loads; `webgpu` and node: builtins stay external.
 * The small browser dependencies (idb-keyval, msgpack, the SentencePiece wasm) are bundled: module workers cannot
 * use import maps, so a bare import left in a worker would only resolve under a bundler, and the built files are
 * meant to work from any static host as they are.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const isExternal = (id: string) => id.startsWith('node:') || id === 'webgpu' || id.startsWith('webgpu/');

export default defineConfig({
  publicDir: false,
  // Worker URLs relative to the importing module (new URL('…', import.meta.url)), wherever dist/lib is hosted.
  base: './',
  worker: { format: 'es', rolldownOptions: { external: isExternal } },
  build: {
    outDir: 'dist/lib',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    minify: false,
    // Workers and WGSL stay files or strings of their own; nothing is inlined as a data: URL (a data: worker has an
    // opaque origin and could not open the IndexedDB model store).
    assetsInlineLimit: 0,
    lib: {
      entry: {
        index: fileURLToPath(new URL('./src/index.ts', import.meta.url)),
        worker: fileURLToPath(new URL('./src/worker/index.ts', import.meta.url)),
      },
      formats: ['es'],
    },
    rolldownOptions: {
      external: isExternal,
      output: { entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
    },
  },
});
