/**
 * Hand-built SentencePiece normalization rules (precompiled_charsmap) for tests: a darts-clone double array with
 * one 256-unit block per trie node, then the NUL-terminated replacement strings. The layout is the one
 * src/tokenizer/charsmap.ts checks; the tests show the native normalizer applies these rules.
 */

const utf8 = new TextEncoder();

/** A charsmap replacing each key of `rules` (matched longest first, as SentencePiece does) by its value. */
export function precompiledCharsMap(rules: Record<string, string>): Uint8Array {
  interface Node { children: Map<number, Node>; value?: number }
  const root: Node = { children: new Map() };
  const strings: number[] = [];
  for (const [from, to] of Object.entries(rules)) {
    let node = root;
    for (const b of utf8.encode(from)) {
      let child = node.children.get(b);
      if (!child) node.children.set(b, (child = { children: new Map() }));
      node = child;
    }
    node.value = strings.length;
    strings.push(...utf8.encode(to), 0);
  }
  const units: number[] = new Array(256).fill(0);
  const newBlock = () => {
    const base = units.length;
    units.push(...new Array(256).fill(0));
    return base;
  };
  // A node at `pos` whose unit is already labelled: gives it a block, links it, fills its children.
  const place = (node: Node, pos: number, label: number) => {
    const base = newBlock();
    const offset = pos ^ base;
    if (offset >= 1 << 21) throw new Error('test charsmap too large for unshifted offsets');
    units[pos] = (offset << 10) | (node.value !== undefined ? 1 << 8 : 0) | label;
    if (node.value !== undefined) units[base] = (0x80000000 | node.value) >>> 0; // the leaf: label 0's slot
    for (const [b, child] of node.children) place(child, base ^ b, b);
  };
  place(root, 0, 0);
  const out = new Uint8Array(4 + units.length * 4 + strings.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, units.length * 4, true);
  units.forEach((u, i) => view.setUint32(4 + 4 * i, u >>> 0, true));
  out.set(strings, 4 + units.length * 4);
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
}

/**
 * `model` (a serialized ModelProto) with `charsmap` as the precompiled_charsmap of its normalizer (ModelProto field
 * 3) or denormalizer (field 5): appended as a second message, which protobuf merges over the first.
 */
export function withCharsMap(model: Uint8Array, charsmap: Uint8Array, specField: 3 | 5 = 3): Uint8Array {
  const inner = [0x12, ...varint(charsmap.length), ...charsmap];
  return Uint8Array.from([...model, (specField << 3) | 2, ...varint(inner.length), ...inner]);
}
