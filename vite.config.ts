import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { modelsPlugin } from './scripts/models-plugin.ts';
import { pwaPlugin, SW_ENTRY, SW_FILE } from './scripts/pwa-plugin.ts';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  // The chat page (index.html) and its service worker; the library build is vite.lib.config.ts.
  plugins: [modelsPlugin({ root }), pwaPlugin()],
  resolve: {
    // The examples import the package by name, as an app that installed it would.
    alias: [
      { find: /^llama-webgpu$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^llama-webgpu\/worker$/, replacement: fileURLToPath(new URL('./src/worker/index.ts', import.meta.url)) },
    ],
  },
  // `webgpu` (Dawn for Node) and node: builtins are imported only under Node, behind dynamic imports that a browser
  // never runs.
  worker: { format: 'es', rolldownOptions: { external: ['webgpu', /^node:/] } },
  build: {
    outDir: 'dist/app',
    emptyOutDir: true,
    target: 'es2022',
    rolldownOptions: {
      external: ['webgpu', /^node:/],
      input: {
        index: fileURLToPath(new URL('./index.html', import.meta.url)),
        embed: fileURLToPath(new URL('./examples/embed.html', import.meta.url)),
        sw: fileURLToPath(new URL(SW_ENTRY, import.meta.url)),
      },
      output: { entryFileNames: (chunk) => (chunk.name === 'sw' ? SW_FILE : 'assets/[name]-[hash].js') },
    },
  },
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 4173 },
  // Shaders live in shaders/ and are pulled in with import.meta.glob(..., { query: '?raw' }).
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // Software GPU drivers use every core: running test files one at a time is faster and keeps memory bounded.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
