/**
 * The library build (`npm run build`): src/index.ts as an ES module in dist/lib/, with the engine and store workers
 * as separate files beside it, and type declarations in dist/types/ (tsconfig.lib.json).
 *
 * It is for browsers and bundlers: the Node-only modules (src/gpu/node.ts with the `webgpu` package, the file
 * readers) are stubbed out (scripts/lib-plugins.ts), and Node gets dist/node (vite.node.config.ts).
 * The small browser dependencies (idb-keyval, msgpack, the SentencePiece wasm) are bundled: module workers cannot
 * use import maps, so a bare import left in a worker would only resolve under a bundler, and the built files are
 * meant to work from any static host as they are. Each worker is one self-contained file, created with
 * `new Worker(new URL('./x.js', import.meta.url), { type: 'module' })`, the form app bundlers follow.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { nodeOnlyStubs, plainWorkerUrls } from './scripts/lib-plugins.ts';

export default defineConfig({
  publicDir: false,
  // Worker URLs relative to the importing module (new URL('…', import.meta.url)), wherever dist/lib is hosted.
  base: './',
  plugins: [nodeOnlyStubs(), plainWorkerUrls(2)],
  worker: { format: 'es', plugins: () => [nodeOnlyStubs()], rolldownOptions: { output: { codeSplitting: false } } },
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
      output: { entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
    },
  },
});
