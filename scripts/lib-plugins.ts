/**
 * Vite plugins for the browser library build (vite.lib.config.ts), so that dist/lib works where apps are built:
 *
 * - nodeOnlyStubs: the Node-only modules (src/gpu/node.ts with Dawn's `webgpu`, the file readers) are reached in the
 *   sources only behind `process.versions.node` checks. The browser build replaces them with small modules that
 *   throw, and any other import of `webgpu` or a node: builtin fails the build naming its importer, so no bundler
 *   ever has to resolve one from dist/lib. Node gets dist/node (vite.node.config.ts), the package's "node" export.
 * - plainWorkerUrls: Vite's library mode writes a worker's URL as `new URL(new URL("…", import.meta.url).href, …)`,
 *   which an app's bundler takes for a plain asset and copies without bundling. Rewritten to the form every bundler
 *   recognizes, `new Worker(new URL("./x.js", import.meta.url), { type: "module" })`, with a self-contained worker.
 */
import type { Plugin } from 'vite';

const STUBBED_SOURCES = [/\/src\/gpu\/node\.ts$/, /\/src\/formats\/node-files\.ts$/];
const NODE_ONLY_MESSAGE = "is Node-only; in Node import from 'llama-webgpu/node' (or let Node pick the package's \"node\" export)";

export function nodeOnlyStubs(): Plugin {
  return {
    name: 'llama-webgpu-node-only-stubs',
    enforce: 'pre',
    resolveId(source, importer) {
      if (source === 'webgpu' || source.startsWith('node:')) {
        this.error(`${importer ?? 'an entry'} imports ${source}, which browsers do not have: reach it only from a module stubbed in scripts/lib-plugins.ts (STUBBED_SOURCES), or use a browser API`);
      }
      return null;
    },
    load(id) {
      if (!STUBBED_SOURCES.some((re) => re.test(id))) return null;
      // The same exports, each failing with the message above when called.
      const names = ['createNodeGpu', 'openNodeGpu', 'nodeAdapter', 'chooseNodeAdapter', 'openCheckpointPath'];
      const file = id.slice(id.lastIndexOf('/src/') + 1);
      return names
        .map((n) => `export function ${n}() { return Promise.reject(new Error(${JSON.stringify(`${file} ${NODE_ONLY_MESSAGE}`)})); }`)
        .join('\n');
    },
  };
}

/** `new URL(/* @vite-ignore *\/ new URL("…", import.meta.url).href, "" + import.meta.url)`, as Vite's lib mode writes it. */
const NESTED_WORKER_URL = /new URL\(\s*\/\* @vite-ignore \*\/\s*new URL\(("[^"]+"), import\.meta\.url\)\.href,\s*"" \+ import\.meta\.url\s*\)/g;

export function plainWorkerUrls(expected: number): Plugin {
  let rewritten = 0;
  return {
    name: 'llama-webgpu-plain-worker-urls',
    apply: 'build',
    renderChunk(code) {
      if (!code.includes('import.meta.url')) return null;
      let n = 0;
      const out = code.replace(NESTED_WORKER_URL, (_m, url: string) => {
        n++;
        return `new URL(${url.startsWith('"./') || url.startsWith('"../') ? url : `"./${url.slice(1)}`}, import.meta.url)`;
      });
      rewritten += n;
      return n ? { code: out, map: null } : null;
    },
    generateBundle() {
      // Fails loudly if Vite changes the form it writes: an app's bundler would silently break otherwise.
      if (rewritten !== expected) this.error(`expected ${expected} worker URLs in Vite's library form, rewrote ${rewritten}; update scripts/lib-plugins.ts`);
    },
  };
}
