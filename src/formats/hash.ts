/**
 * SHA-256 of shard bytes as they are written. Node hashes incrementally with node:crypto; a browser keeps the
 * pieces of one shard (at most the shard size) and hashes them with crypto.subtle when the shard is closed.
 */
export interface Sha256 {
  update(bytes: Uint8Array): void;
  /** Lower-case hex. */
  digest(): Promise<string>;
}

type NodeCrypto = { createHash(alg: 'sha256'): { update(b: Uint8Array): unknown; digest(enc: 'hex'): string } };

/**
 * node:crypto through process.getBuiltinModule (Node 20.16+), not an import: an app's bundler then never sees a
 * node: specifier in the browser build. Older Node hashes with crypto.subtle like a browser.
 */
async function loadNodeCrypto(): Promise<NodeCrypto | null> {
  const proc = typeof process === 'undefined' ? undefined : (process as { getBuiltinModule?: (id: string) => unknown });
  return (proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined) ?? null;
}

function toHex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function createSha256(): Promise<Sha256> {
  const nc = await loadNodeCrypto();
  if (nc) {
    const h = nc.createHash('sha256');
    return { update: (b) => void h.update(b), digest: async () => h.digest('hex') };
  }
  return bufferedSha256();
}

/** The browser path: crypto.subtle has no incremental API, so the pieces are kept and hashed at the end. */
export function bufferedSha256(): Sha256 {
  const parts: Uint8Array[] = [];
  let length = 0;
  return {
    update(b) {
      parts.push(b.slice());
      length += b.byteLength;
    },
    async digest() {
      const all = new Uint8Array(length);
      let o = 0;
      for (const p of parts) all.set(p, (o += p.byteLength) - p.byteLength);
      parts.length = 0;
      return toHex(await crypto.subtle.digest('SHA-256', all));
    },
  };
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const h = await createSha256();
  h.update(bytes);
  return h.digest();
}
