/**
 * Builds the service worker (src/app/sw.ts, emitted as /sw.js) with the list of files to precache: every file of
 * the build (scripts, workers, styles, index.html) and of public/ (manifest, icons).
 *
 * Why by hand rather than vite-plugin-pwa: the app needs one precache list and three fetch rules; Workbox's build
 * tooling would add hundreds of packages to a project whose whole dependency list fits on a screen.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Plugin, ResolvedConfig } from 'vite';

export const SW_ENTRY = 'src/app/sw.ts';
export const SW_FILE = 'sw.js';

function listFiles(dir: string, prefix = ''): string[] {
  let out: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out = out.concat(listFiles(full, `${prefix}${name}/`));
    else out.push(prefix + name);
  }
  return out;
}

export function pwaPlugin(): Plugin {
  let config: ResolvedConfig;
  return {
    name: 'llama-webgpu:pwa',
    apply: 'build',
    enforce: 'post',
    configResolved(c) {
      config = c;
    },
    generateBundle(_options, bundle) {
      const sw = Object.values(bundle).find((f) => f.type === 'chunk' && f.fileName === SW_FILE);
      if (!sw || sw.type !== 'chunk') return;
      const hash = createHash('sha256');
      const files: string[] = [];
      for (const f of Object.values(bundle)) {
        if (f.fileName === SW_FILE || f.fileName.endsWith('.map')) continue;
        files.push(f.fileName);
        hash.update(f.fileName);
        hash.update(f.type === 'chunk' ? f.code : typeof f.source === 'string' ? f.source : Buffer.from(f.source));
      }
      if (config.publicDir) {
        for (const f of listFiles(config.publicDir)) {
          files.push(f);
          hash.update(f);
          hash.update(readFileSync(path.join(config.publicDir, f)));
        }
      }
      files.sort();
      const manifest = JSON.stringify({ version: hash.digest('hex').slice(0, 16), files });
      if (!sw.code.includes('__PRECACHE_MANIFEST__')) this.error(`${SW_ENTRY} lost its __PRECACHE_MANIFEST__ placeholder in the build`);
      sw.code = sw.code.replaceAll('__PRECACHE_MANIFEST__', manifest);
    },
  };
}
