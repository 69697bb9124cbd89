/**
 * What the browser benchmark and the browser tests serve on 127.0.0.1: the library as `npm run build` emits it
 * (built into a folder of the caller's choosing with vite.lib.config.ts), a page that imports it as a plain ES
 * module, and model package folders, each under /pkg/<id>/.
 */
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The page: the built library's exports on window.llama, and window.llamaReady once they are. */
const PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>llama-webgpu bench</title>
<script type="module">
  import * as llama from '/lib/index.js';
  window.llama = llama;
  window.llamaReady = true;
</script>`;

/** Builds the library (src/index.ts and its workers) into `outDir`. */
export async function buildLibrary(outDir: string): Promise<void> {
  await build({ configFile: path.join(ROOT, 'vite.lib.config.ts'), root: ROOT, logLevel: 'warn', build: { outDir, emptyOutDir: true, sourcemap: false } });
}

/** The engine worker's script in a built library, as a path under /lib/. */
export function engineWorkerPath(libDir: string): string {
  const file = readdirSync(libDir, { recursive: true })
    .map(String)
    .find((f) => /(^|\/)engine-worker[^/]*\.js$/.test(f));
  if (!file) throw new Error(`no engine-worker*.js in the library build at ${libDir}`);
  return `/lib/${file.split(path.sep).join('/')}`;
}

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves the page at /, `libDir` under /lib/ and each package folder under /pkg/<id>/. `onRequest` sees every
 * request path.
 */
export async function serveLibrary(libDir: string, packages: Record<string, string>, onRequest?: (pathname: string) => void): Promise<StaticServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    onRequest?.(url.pathname);
    if (url.pathname === '/') {
      res.setHeader('Content-Type', 'text/html');
      res.end(PAGE);
      return;
    }
    const file = resolveFile(url.pathname, libDir, packages);
    if (!file) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('Content-Type', file.endsWith('.js') ? 'text/javascript' : file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    res.setHeader('Content-Length', String(statSync(file).size));
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The file a request path names, or null when it is outside the served folders or missing. */
function resolveFile(pathname: string, libDir: string, packages: Record<string, string>): string | null {
  let dir: string | undefined;
  let rest: string;
  if (pathname.startsWith('/lib/')) {
    dir = libDir;
    rest = pathname.slice('/lib/'.length);
  } else {
    const m = /^\/pkg\/([^/]+)\/(.*)$/.exec(pathname);
    if (!m) return null;
    dir = packages[decodeURIComponent(m[1])];
    rest = m[2];
  }
  if (!dir) return null;
  const root = path.resolve(dir);
  const file = path.resolve(root, decodeURIComponent(rest));
  if (!file.startsWith(root + path.sep) || !existsSync(file) || !statSync(file).isFile()) return null;
  return file;
}
