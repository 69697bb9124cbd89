/**
 * A static file server on 127.0.0.1 for import tests: answers HTTP Range requests (206 with Content-Range) and HEAD,
 * sends an ETag, counts the body bytes it sends, and can misbehave on purpose: break a response off once after a
 * number of bytes, or ignore Range headers.
 */
import { openSync, readSync, closeSync, statSync, existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface RangeServer {
  url: string;
  /** Body bytes sent since start (or the last reset). */
  sent: number;
  /** Range requests answered with 206. */
  rangeRequests: number;
  /** The next response body with more than this many bytes is cut off after them (once). */
  breakAfter: number | null;
  ignoreRange: boolean;
  /** Files under these paths are answered with a different ETag (as if replaced on the server). */
  etagSuffix: string;
  close(): Promise<void>;
}

/** Serves `routes`: URL path prefix -> folder. */
export async function startRangeServer(routes: Record<string, string>): Promise<RangeServer> {
  const state = { sent: 0, rangeRequests: 0, breakAfter: null as number | null, ignoreRange: false, etagSuffix: '' };
  const server = http.createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const prefix = Object.keys(routes).find((p) => pathname.startsWith(p));
    const file = prefix === undefined ? '' : path.join(routes[prefix], path.normalize(pathname.slice(prefix.length)));
    if (!prefix || !file.startsWith(routes[prefix]) || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    const st = statSync(file);
    const size = st.size;
    res.setHeader('ETag', `"${size}-${Math.round(st.mtimeMs)}${state.etagSuffix}"`);
    res.setHeader('Accept-Ranges', 'bytes');
    let start = 0;
    let end = size; // exclusive
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m && !state.ignoreRange) {
      start = Number(m[1]);
      end = m[2] ? Math.min(size, Number(m[2]) + 1) : size;
      if (start >= size) {
        res.statusCode = 416;
        res.setHeader('Content-Range', `bytes */${size}`);
        res.end();
        return;
      }
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end - 1}/${size}`);
      state.rangeRequests++;
    }
    res.setHeader('Content-Length', String(end - start));
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const cut = state.breakAfter !== null && end - start > state.breakAfter ? state.breakAfter : null;
    if (cut !== null) state.breakAfter = null;
    const fd = openSync(file, 'r');
    const buf = Buffer.alloc(1 << 20);
    let pos = start;
    let open = true;
    const finish = () => {
      if (open) closeSync(fd);
      open = false;
    };
    const pump = () => {
      while (open && pos < end) {
        if (cut !== null && pos - start >= cut) {
          finish();
          res.destroy(); // the connection drops mid-body
          return;
        }
        const want = Math.min(buf.length, end - pos, cut !== null ? start + cut - pos : Infinity);
        const n = readSync(fd, buf, 0, want, pos);
        pos += n;
        state.sent += n;
        if (!res.write(Buffer.from(buf.subarray(0, n)))) {
          res.once('drain', pump);
          return;
        }
      }
      if (!open) return;
      finish();
      res.end();
    };
    res.on('close', finish); // the client went away before the end
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  }) as RangeServer;
}
