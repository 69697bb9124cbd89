/**
 * SHA-256 of shard bytes as they are written, incrementally: Node with node:crypto, a browser with the plain
 * TypeScript SHA-256 below (crypto.subtle hashes only whole buffers, which would keep a whole shard in memory while it
 * is written, and a second copy while it is hashed).
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
  return streamingSha256();
}

/** SHA-256's round constants (FIPS 180-4, 4.2.2). */
const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** SHA-256 in plain TypeScript, fed in any pieces: it holds one 64-byte block, never the bytes hashed. */
export function streamingSha256(): Sha256 {
  const h = Uint32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const block = new Uint8Array(64);
  let held = 0;
  let length = 0;
  const compress = (b: Uint8Array, at: number) => {
    for (let i = 0; i < 16; i++, at += 4) w[i] = (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [a, b2, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b2) ^ (a & c) ^ (b2 & c))) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b2;
      b2 = a;
      a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b2; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  };
  const update = (bytes: Uint8Array) => {
    length += bytes.byteLength;
    let at = 0;
    if (held > 0) {
      const n = Math.min(64 - held, bytes.byteLength);
      block.set(bytes.subarray(0, n), held);
      held += n;
      at = n;
      if (held < 64) return;
      compress(block, 0);
      held = 0;
    }
    for (; at + 64 <= bytes.byteLength; at += 64) compress(bytes, at);
    block.set(bytes.subarray(at), 0);
    held = bytes.byteLength - at;
  };
  return {
    update,
    async digest() {
      const bits = length * 8;
      const tail = new Uint8Array((held < 56 ? 64 : 128) - held);
      tail[0] = 0x80;
      const view = new DataView(tail.buffer);
      view.setUint32(tail.length - 8, Math.floor(bits / 2 ** 32));
      view.setUint32(tail.length - 4, bits >>> 0);
      update(tail);
      return Array.from(h, (x) => x.toString(16).padStart(8, '0')).join('');
    },
  };
}

/** SHA-256 of bytes already whole in memory: crypto.subtle in a browser (native, and no copy is kept). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const nc = await loadNodeCrypto();
  if (!nc && globalThis.crypto?.subtle) return toHex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  const h = await createSha256();
  h.update(bytes);
  return h.digest();
}
