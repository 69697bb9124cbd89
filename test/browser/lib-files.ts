/** Serves the library build under /lib/ from a test's plain static server (a 404 for anything else). */
import { createReadStream, existsSync, statSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

export function sendLibFile(lib: string, pathname: string, res: http.ServerResponse): void {
  const file = path.join(lib, path.normalize(pathname.replace(/^\/lib\//, '/')));
  if (!pathname.startsWith('/lib/') || !file.startsWith(lib) || !existsSync(file) || statSync(file).isDirectory()) {
    res.statusCode = 404;
    res.end();
    return;
  }
  res.setHeader('Content-Type', file.endsWith('.js') ? 'text/javascript' : 'application/octet-stream');
  createReadStream(file).pipe(res);
}
