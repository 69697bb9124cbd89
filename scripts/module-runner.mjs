// Vite's module runner in Node over this repository's sources (no config file, HMR, watcher or dependency
// optimizer), so sources, WGSL imports and import.meta.glob resolve exactly as they do in the browser build and
// in the tests. Used by scripts/run.mjs and the models plugin's converter.
import { createServer, createServerModuleRunner } from 'vite';

/** @param {string} root the repository root */
export async function startModuleRunner(root) {
  const server = await createServer({
    root,
    configFile: false,
    logLevel: 'error',
    server: { middlewareMode: true, hmr: false, ws: false, watch: null },
    appType: 'custom',
    optimizeDeps: { noDiscovery: true, include: [] },
  });
  const runner = createServerModuleRunner(server.environments.ssr, { hmr: false });
  return {
    /** @param {string} file an absolute path */
    import: (file) => runner.import(file),
    async close() {
      await runner.close();
      await server.close();
    },
  };
}
