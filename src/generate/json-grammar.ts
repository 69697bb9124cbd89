/**
 * Compact JSON for a compiled schema (json-schema.ts) as a byte-level pushdown automaton. A state is an immutable
 * stack of frames, so a walk over the token trie (json-mask.ts) can branch from any state without copying.
 *
 *   step(state, byte) -> the next state, or null when the byte cannot follow.
 *   state.cost        -> the fewest bytes that complete the value from here (0: complete now).
 *
 * Whitespace is bounded: at most one space before the value, after each ':' and after each ','. Every byte the
 * cost counts is printable ASCII, which every SentencePiece vocab with byte fallback writes as one token, so a
 * state of cost c is completed in at most c tokens: the mask keeps the output completable within max_tokens.
 */
import { MAX_FRAC_DIGITS, MAX_INT_DIGITS, numberMinExtra, type NumberText, type SchemaNode } from './json-schema.ts';

type ObjectNode = Extract<SchemaNode, { kind: 'object' }>;
type ArrayNode = Extract<SchemaNode, { kind: 'array' }>;
type NumberNode = Extract<SchemaNode, { kind: 'number' }>;

/** Container phases: just opened, after a value (or a key's value), after a comma (`space`: one may follow). */
const OPEN = 0;
const AFTER_VALUE = 1;
const COMMA = 2;
/** A free object after its key string, before ':'. */
const COLON = 3;

type Frame =
  | { kind: 'value'; node: SchemaNode; space: boolean }
  | { kind: 'object'; node: ObjectNode; phase: number; next: number; space: boolean }
  | { kind: 'key'; candidates: number[]; pos: number }
  | { kind: 'array'; node: ArrayNode; phase: number; count: number; space: boolean }
  /** esc: 0 none, 1 after '\', 2..5: hex digits of \u still to come + 1. cont: UTF-8 continuation bytes to come. */
  | { kind: 'string'; esc: number; cont: number; lo: number; hi: number }
  | { kind: 'number'; node: NumberNode; text: NumberText; extra: number }
  | { kind: 'literal'; options: Uint8Array[]; pos: number }
  | { kind: 'end' };

export interface JsonState {
  readonly top: Frame;
  readonly below: JsonState | null;
  /** Fewest bytes that complete the value. */
  readonly cost: number;
  /** Identifies the state for the mask cache (computed on demand). */
  sig?: string;
}

const SPACE = 0x20;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
const ESCAPES = new Set([...'"\\/bfnrt'].map((c) => c.charCodeAt(0)));

function requiredAfter(node: ObjectNode, next: number): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (let i = next; i < node.props.length; i++) {
    const p = node.props[i];
    if (p.required) {
      count++;
      bytes += p.keyBytes.length + p.value.minLen;
    }
  }
  return { count, bytes };
}

/** Bytes that complete an object after its property `next - 1` (phase AFTER_VALUE), including '}'. */
function objectRest(node: ObjectNode, next: number): number {
  const r = requiredAfter(node, next);
  return r.bytes + r.count + 1;
}

/** Candidates for the next key: the properties from `next` up to and including the first required one. */
function keyCandidates(node: ObjectNode, next: number): number[] {
  const out: number[] = [];
  for (let i = next; i < node.props.length; i++) {
    out.push(i);
    if (node.props[i].required) break;
  }
  return out;
}

function frameCost(f: Frame): number {
  switch (f.kind) {
    case 'value':
      return f.node.minLen;
    case 'object': {
      const n = f.node;
      if (n.free) return f.phase === COMMA ? n.free.minLen + 4 : f.phase === COLON ? n.free.minLen + 2 : 1;
      if (f.phase === AFTER_VALUE) return objectRest(n, f.next);
      const r = requiredAfter(n, f.next);
      if (r.count > 0) return r.bytes + r.count;
      if (f.phase === OPEN) return 1;
      let cheapest = Infinity;
      for (let i = f.next; i < n.props.length; i++) cheapest = Math.min(cheapest, n.props[i].keyBytes.length + n.props[i].value.minLen);
      return cheapest + 1;
    }
    case 'key':
      return 0; // the key frame's cost lives in keyCost (it needs the object below)
    case 'array': {
      const m = f.node.items.minLen;
      const left = Math.max(0, f.node.minItems - f.count);
      if (f.phase === AFTER_VALUE || (f.phase === OPEN && left === 0)) return left * (m + 1) + 1;
      const r = Math.max(1, left);
      return r * m + r; // r items, r - 1 commas and ']'
    }
    case 'string':
      return 1 + f.cont + (f.esc === 1 ? 1 : f.esc >= 2 ? f.esc - 1 : 0);
    case 'number':
      return f.extra;
    case 'literal': {
      let c = Infinity;
      for (const o of f.options) c = Math.min(c, o.length - f.pos);
      return c;
    }
    case 'end':
      return 0;
  }
}

/** Cost of a key frame over its object (the object frame below it counts 0). */
function keyCost(f: Extract<Frame, { kind: 'key' }>, obj: ObjectNode): number {
  let c = Infinity;
  for (const i of f.candidates) {
    const p = obj.props[i];
    c = Math.min(c, p.keyBytes.length - f.pos + p.value.minLen + objectRest(obj, i + 1));
  }
  return c;
}

function push(below: JsonState | null, top: Frame): JsonState {
  if (top.kind === 'key') {
    // A key frame's cost covers its object's rest, so the object frame below it is skipped.
    const obj = below!;
    return { top, below, cost: keyCost(top, (obj.top as Extract<Frame, { kind: 'object' }>).node) + (obj.below?.cost ?? 0) };
  }
  return { top, below, cost: frameCost(top) + (below?.cost ?? 0) };
}

const STRING: Frame = { kind: 'string', esc: 0, cont: 0, lo: 0, hi: 0 };

/** The state before the first byte of a value of `root` (one leading space allowed). */
export function initialState(root: SchemaNode): JsonState {
  return push(push(null, { kind: 'end' }), { kind: 'value', node: root, space: true });
}

/** True when nothing more can follow: generation stops. */
export function isDone(s: JsonState): boolean {
  return s.top.kind === 'end';
}

/** True when the value is complete (EOS may follow): done, or a number or literal at the top level that could go on. */
export function isComplete(s: JsonState): boolean {
  return s.cost === 0 && (s.top.kind === 'end' || s.below?.top.kind === 'end');
}

/** A string identifying the state, for caching masks. */
export function signature(s: JsonState): string {
  if (s.sig !== undefined) return s.sig;
  const f = s.top;
  let k: string;
  switch (f.kind) {
    case 'value':
      k = `v${f.node.id}${f.space ? 's' : ''}`;
      break;
    case 'object':
      k = `o${f.node.id}.${f.phase}.${f.next}${f.space ? 's' : ''}`;
      break;
    case 'key':
      k = `k${f.candidates.join(',')}.${f.pos}`;
      break;
    case 'array': {
      const n = f.node;
      const count = n.maxItems === Infinity ? Math.min(f.count, n.minItems) : f.count;
      k = `a${n.id}.${f.phase}.${count}${f.space ? 's' : ''}`;
      break;
    }
    case 'string':
      k = `s${f.esc}.${f.cont}.${f.lo}`;
      break;
    case 'number':
      k = `n${f.node.id}.${f.text.neg ? '-' : ''}${f.text.int}${f.text.dot ? '.' : ''}${f.text.frac}`;
      break;
    case 'literal':
      k = `l${f.pos}:${f.options.map((o) => String.fromCharCode(...o)).join('\u0000')}`;
      break;
    case 'end':
      k = 'e';
      break;
  }
  s.sig = s.below ? `${k}|${signature(s.below)}` : k;
  return s.sig;
}

function replaceTop(s: JsonState, top: Frame): JsonState {
  return push(s.below, top);
}

/** Starts a value of `node` with byte b above `below`, or null. */
function startValue(below: JsonState, node: SchemaNode, b: number): JsonState | null {
  switch (node.kind) {
    case 'object':
      return b === 0x7b ? push(below, { kind: 'object', node, phase: OPEN, next: 0, space: false }) : null;
    case 'array':
      return b === 0x5b ? push(below, { kind: 'array', node, phase: OPEN, count: 0, space: false }) : null;
    case 'string':
      return b === QUOTE ? push(below, STRING) : null;
    case 'number': {
      if (b !== 0x2d && !isDigit(b)) return null;
      const text: NumberText = { neg: b === 0x2d, int: b === 0x2d ? '' : String.fromCharCode(b), dot: false, frac: '' };
      const extra = numberMinExtra(node.integer, node.bounds, text);
      return extra === Infinity ? null : push(below, { kind: 'number', node, text, extra });
    }
    case 'literal':
      return stepLiteral(below, node.options, 0, b);
    case 'union':
      for (const alt of node.alts) {
        const s = startValue(below, alt, b);
        if (s) return s;
      }
      return null;
  }
}

/** Byte b at position pos of the literal options: the continued literal, or the state below when it completes. */
function stepLiteral(below: JsonState, options: Uint8Array[], pos: number, b: number): JsonState | null {
  const alive = options.filter((o) => o.length > pos && o[pos] === b);
  if (alive.length === 0) return null;
  if (alive.every((o) => o.length === pos + 1)) return below;
  return push(below, { kind: 'literal', options: alive, pos: pos + 1 });
}

/** The state after byte b, or null when b cannot follow. */
export function step(s: JsonState, b: number): JsonState | null {
  const f = s.top;
  const below = s.below!;
  switch (f.kind) {
    case 'end':
      return null;
    case 'value':
      if (f.space && b === SPACE) return replaceTop(s, { ...f, space: false });
      return startValue(below, f.node, b);
    case 'string':
      return stepString(s, f, b);
    case 'literal': {
      const next = stepLiteral(below, f.options, f.pos, b);
      if (next) return next;
      // A complete option (one that others extend) ends at the first byte none of them takes.
      return f.options.some((o) => o.length === f.pos) ? step(below, b) : null;
    }
    case 'number':
      return stepNumber(s, f, b);
    case 'key': {
      const obj = below.top as Extract<Frame, { kind: 'object' }>;
      const alive = f.candidates.filter((i) => obj.node.props[i].keyBytes[f.pos] === b);
      if (alive.length === 0) return null;
      const done = alive.find((i) => obj.node.props[i].keyBytes.length === f.pos + 1);
      if (done === undefined) return push(below, { kind: 'key', candidates: alive, pos: f.pos + 1 });
      // `"name":` is written: the object waits after this property's value, which comes next.
      const after = push(below.below, { ...obj, phase: AFTER_VALUE, next: done + 1, space: false });
      return push(after, { kind: 'value', node: obj.node.props[done].value, space: true });
    }
    case 'object':
      return stepObject(s, f, b);
    case 'array':
      return stepArray(s, f, b);
  }
}

function stepString(s: JsonState, f: Extract<Frame, { kind: 'string' }>, b: number): JsonState | null {
  if (f.cont > 0) {
    if (b < f.lo || b > f.hi) return null;
    return f.cont === 1 ? replaceTop(s, STRING) : replaceTop(s, { kind: 'string', esc: 0, cont: f.cont - 1, lo: 0x80, hi: 0xbf });
  }
  if (f.esc === 1) {
    if (b === 0x75) return replaceTop(s, { kind: 'string', esc: 5, cont: 0, lo: 0, hi: 0 });
    return ESCAPES.has(b) ? replaceTop(s, STRING) : null;
  }
  if (f.esc >= 2) {
    if (!isHex(b)) return null;
    return f.esc === 2 ? replaceTop(s, STRING) : replaceTop(s, { kind: 'string', esc: f.esc - 1, cont: 0, lo: 0, hi: 0 });
  }
  if (b === QUOTE) return s.below;
  if (b === BACKSLASH) return replaceTop(s, { kind: 'string', esc: 1, cont: 0, lo: 0, hi: 0 });
  if (b < 0x20) return null;
  if (b < 0x80) return s;
  // UTF-8 lead bytes and the range of the first continuation byte (RFC 3629: no overlongs, surrogates or > U+10FFFF).
  const lead = (cont: number, lo: number, hi: number) => replaceTop(s, { kind: 'string', esc: 0, cont, lo, hi });
  if (b >= 0xc2 && b <= 0xdf) return lead(1, 0x80, 0xbf);
  if (b === 0xe0) return lead(2, 0xa0, 0xbf);
  if (b === 0xed) return lead(2, 0x80, 0x9f);
  if (b >= 0xe1 && b <= 0xef) return lead(2, 0x80, 0xbf);
  if (b === 0xf0) return lead(3, 0x90, 0xbf);
  if (b >= 0xf1 && b <= 0xf3) return lead(3, 0x80, 0xbf);
  if (b === 0xf4) return lead(3, 0x80, 0x8f);
  return null;
}

function stepNumber(s: JsonState, f: Extract<Frame, { kind: 'number' }>, b: number): JsonState | null {
  const t = f.text;
  let text: NumberText | null = null;
  if (isDigit(b)) {
    if (!t.dot && t.int !== '0' && t.int.length < MAX_INT_DIGITS) text = { ...t, int: t.int + String.fromCharCode(b) };
    else if (t.dot && t.frac.length < MAX_FRAC_DIGITS) text = { ...t, frac: t.frac + String.fromCharCode(b) };
  } else if (b === 0x2e && !f.node.integer && !t.dot && t.int !== '') text = { ...t, dot: true };
  if (text) {
    const extra = numberMinExtra(f.node.integer, f.node.bounds, text);
    if (extra !== Infinity) return replaceTop(s, { ...f, text, extra });
  }
  // A complete number ends at the first byte that cannot extend it, which belongs to what follows.
  return f.extra === 0 ? step(s.below!, b) : null;
}

function stepObject(s: JsonState, f: Extract<Frame, { kind: 'object' }>, b: number): JsonState | null {
  const n = f.node;
  const below = s.below!;
  if (f.phase === COLON) {
    if (b !== 0x3a) return null;
    return push(replaceTop(s, { ...f, phase: AFTER_VALUE }), { kind: 'value', node: n.free!, space: true });
  }
  if (f.phase === OPEN || f.phase === COMMA) {
    if (f.phase === COMMA && f.space && b === SPACE) return replaceTop(s, { ...f, space: false });
    if (b === QUOTE) {
      if (n.free) return push(replaceTop(s, { ...f, phase: COLON, space: false }), STRING);
      const candidates = keyCandidates(n, f.next);
      if (candidates.length === 0) return null;
      return push(replaceTop(s, { ...f, space: false }), { kind: 'key', candidates, pos: 1 });
    }
  }
  if (b === 0x7d && f.phase !== COMMA && (n.free || requiredAfter(n, f.next).count === 0)) return below;
  if (b === 0x2c && f.phase === AFTER_VALUE && (n.free || f.next < n.props.length)) return replaceTop(s, { ...f, phase: COMMA, space: true });
  return null;
}

function stepArray(s: JsonState, f: Extract<Frame, { kind: 'array' }>, b: number): JsonState | null {
  const n = f.node;
  if (f.phase === AFTER_VALUE) {
    if (b === 0x5d && f.count >= n.minItems) return s.below;
    if (b === 0x2c && f.count < n.maxItems) return replaceTop(s, { ...f, phase: COMMA, space: true });
    return null;
  }
  if (f.phase === OPEN && b === 0x5d && n.minItems === 0) return s.below;
  if (f.phase === COMMA && f.space && b === SPACE) return replaceTop(s, { ...f, space: false });
  if (f.count >= n.maxItems) return null;
  const after = replaceTop(s, { ...f, phase: AFTER_VALUE, count: f.count + 1, space: false });
  return startValue(after, n.items, b);
}
