/**
 * Token masks for structured output: which token ids may come next so the text stays a prefix of compact JSON
 * matching the schema, and can still be completed within the tokens left.
 *
 * Every token's bytes (SentencePiece pieces with U+2581 as a space, byte-fallback pieces <0xNN> as their byte)
 * go into one trie per vocab. A mask is a walk of the trie from the grammar state (json-grammar.ts) that stops
 * at the first byte a branch cannot take; inside a string, a subtree whose bytes are all plain printable ASCII is
 * taken whole without stepping. Masks are cached per grammar state, with the largest cost they allow, so most
 * steps are a lookup; only near the end of max_tokens, when that cost no longer fits, is a mask walked with the
 * budget.
 */
import { LlamaWebGpuError } from '../errors.ts';
import { bytePieceValue, PieceType, SPACE_SYMBOL, type Vocab } from '../tokenizer/vocab.ts';
import { initialState, isComplete, isDone, signature, step, type JsonState } from './json-grammar.ts';
import { compileJsonSchema } from './json-schema.ts';

/** What constrains each sampled token (generateIds applies it through the sampler's mask). */
export interface TokenConstraint {
  /** Bits (id >> 5, 1 << (id & 31)) of the ids allowed next when `remaining` tokens, this one included, are left. */
  mask(remaining: number): Uint32Array;
  /** Advances past the sampled id (which the last mask allowed). */
  accept(id: number): void;
  /** Nothing more can follow: generation ends here. */
  readonly done: boolean;
  /** The output so far is a complete value. */
  readonly complete: boolean;
  /** Fewest tokens that complete the output from here. */
  readonly minTokens: number;
}

const isPlainStringByte = (b: number) => b >= 0x20 && b < 0x80 && b !== 0x22 && b !== 0x5c;
const utf8 = new TextEncoder();

/** A vocab's token bytes as a trie (flat arrays; node 0 is the root), each node's tokens contiguous in `order`. */
export class TokenTrie {
  readonly vocabSize: number;
  /** Per node: its byte, first child, next sibling, and whether every byte at and below it is plain string text. */
  readonly byte: Uint8Array;
  readonly firstChild: Int32Array;
  readonly nextSibling: Int32Array;
  readonly plain: Uint8Array;
  /** Token ids in trie order; node n's subtree holds order[subStart[n] .. subEnd[n]), its own ids from subStart[n] to ownEnd[n]. */
  readonly order: Int32Array;
  readonly subStart: Int32Array;
  readonly ownEnd: Int32Array;
  readonly subEnd: Int32Array;

  constructor(tokens: (Uint8Array | null)[]) {
    this.vocabSize = tokens.length;
    const children: Map<number, number>[] = [new Map()];
    const own: number[][] = [[]];
    const bytes: number[] = [0];
    tokens.forEach((t, id) => {
      if (!t || t.length === 0) return;
      let n = 0;
      for (const b of t) {
        let c = children[n].get(b);
        if (c === undefined) {
          c = children.length;
          children.push(new Map());
          own.push([]);
          bytes.push(b);
          children[n].set(b, c);
        }
        n = c;
      }
      own[n].push(id);
    });
    const N = children.length;
    this.byte = Uint8Array.from(bytes);
    this.firstChild = new Int32Array(N).fill(-1);
    this.nextSibling = new Int32Array(N).fill(-1);
    this.plain = new Uint8Array(N);
    this.subStart = new Int32Array(N);
    this.ownEnd = new Int32Array(N);
    this.subEnd = new Int32Array(N);
    const order: number[] = [];
    for (let n = 0; n < N; n++) {
      const kids = [...children[n].values()].sort((a, b) => bytes[a] - bytes[b]);
      if (kids.length) this.firstChild[n] = kids[0];
      for (let i = 0; i + 1 < kids.length; i++) this.nextSibling[kids[i]] = kids[i + 1];
    }
    // Depth-first numbering, iteratively (tokens can be long).
    const stack: [number, boolean][] = [[0, false]];
    while (stack.length) {
      const [n, closing] = stack.pop()!;
      if (closing) {
        this.subEnd[n] = order.length;
        let plain = n === 0 || isPlainStringByte(bytes[n]);
        for (let c = this.firstChild[n]; c >= 0 && plain; c = this.nextSibling[c]) plain = this.plain[c] === 1;
        this.plain[n] = plain ? 1 : 0;
        continue;
      }
      this.subStart[n] = order.length;
      order.push(...own[n]);
      this.ownEnd[n] = order.length;
      stack.push([n, true]);
      const kids: number[] = [];
      for (let c = this.firstChild[n]; c >= 0; c = this.nextSibling[c]) kids.push(c);
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], false]);
    }
    this.order = Int32Array.from(order);
  }
}

/** The bytes a token writes into the text, or null for control, unknown and unused pieces. */
export function tokenBytes(vocab: Vocab, id: number): Uint8Array | null {
  const type = vocab.types[id];
  const piece = vocab.pieces[id];
  if (type === PieceType.BYTE) {
    const b = bytePieceValue(piece);
    return b < 0 ? null : Uint8Array.of(b);
  }
  if (type !== PieceType.NORMAL && type !== PieceType.USER_DEFINED) return null;
  return utf8.encode(piece.replaceAll(SPACE_SYMBOL, ' '));
}

interface CachedMask {
  bits: Uint32Array;
  /** Largest cost of a state an allowed token leads to: the mask holds while remaining - 1 >= maxCost. */
  maxCost: number;
  /** (from, to, cost) runs of trie order, kept once a budget below maxCost asks for them. */
  runs?: Int32Array;
}

/** Per vocab: token bytes, the trie, and mask caches per schema (a few schemas, most recent kept). */
class JsonVocab {
  readonly tokens: (Uint8Array | null)[];
  readonly trie: TokenTrie;
  private readonly caches = new Map<string, Map<string, CachedMask>>();

  constructor(vocab: Vocab) {
    this.tokens = vocab.pieces.map((_, id) => tokenBytes(vocab, id));
    const single = new Set<number>();
    for (const t of this.tokens) if (t?.length === 1) single.add(t[0]);
    for (let b = 0x20; b < 0x7f; b++) {
      if (!single.has(b)) {
        throw new LlamaWebGpuError(
          'JSON_VOCAB',
          `Structured output needs a one-token spelling of every printable ASCII character, and this vocab has none for ${JSON.stringify(String.fromCharCode(b))}. Use a model whose tokenizer has byte fallback.`,
        );
      }
    }
    this.trie = new TokenTrie(this.tokens);
  }

  cache(schemaKey: string): Map<string, CachedMask> {
    let c = this.caches.get(schemaKey);
    if (c) this.caches.delete(schemaKey);
    else c = new Map();
    this.caches.set(schemaKey, c);
    while (this.caches.size > 8) this.caches.delete(this.caches.keys().next().value!);
    return c;
  }
}

const jsonVocabs = new WeakMap<Vocab, JsonVocab>();
/** Masks kept per schema before the cache starts over. */
const MASK_CACHE_LIMIT = 2048;

function jsonVocab(vocab: Vocab): JsonVocab {
  let v = jsonVocabs.get(vocab);
  if (!v) jsonVocabs.set(vocab, (v = new JsonVocab(vocab)));
  return v;
}

/**
 * Walks the trie from `state` and reports every token that can follow as runs of trie order: emit(from, to, cost)
 * for the ids order[from .. to), each leading to a state of that cost.
 */
export function walkTokens(trie: TokenTrie, state: JsonState, emit: (from: number, to: number, cost: number) => void): void {
  const visit = (node: number, s: JsonState) => {
    const inText = s.top.kind === 'string' && s.top.esc === 0 && s.top.cont === 0;
    for (let c = trie.firstChild[node]; c >= 0; c = trie.nextSibling[c]) {
      // Plain text inside a string leaves the state as it is: the whole subtree follows.
      if (inText && trie.plain[c]) {
        emit(trie.subStart[c], trie.subEnd[c], s.cost);
        continue;
      }
      const next = step(s, trie.byte[c]);
      if (!next) continue;
      if (trie.ownEnd[c] > trie.subStart[c]) emit(trie.subStart[c], trie.ownEnd[c], next.cost);
      if (trie.firstChild[c] >= 0) visit(c, next);
    }
  };
  visit(0, state);
}

function setBits(trie: TokenTrie, bits: Uint32Array, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const id = trie.order[i];
    bits[id >>> 5] |= 1 << (id & 31);
  }
}

/** Sets the bit of every token that can follow `state` and leads to a state of cost at most `budget`. */
export function walkMask(trie: TokenTrie, state: JsonState, budget: number, bits: Uint32Array): void {
  walkTokens(trie, state, (from, to, cost) => {
    if (cost <= budget) setBits(trie, bits, from, to);
  });
}

/** A TokenConstraint that keeps the output compact JSON matching a schema. */
export class JsonConstraint implements TokenConstraint {
  private state: JsonState;
  private ended = false;
  private readonly masks: Map<string, CachedMask>;
  private readonly words: number;

  constructor(
    private readonly vocab: JsonVocab,
    schema: unknown,
    private readonly eosId: number,
  ) {
    this.state = initialState(compileJsonSchema(schema));
    this.masks = vocab.cache(JSON.stringify(schema));
    this.words = Math.ceil(vocab.tokens.length / 32);
  }

  get done(): boolean {
    return this.ended || isDone(this.state);
  }

  get complete(): boolean {
    return isComplete(this.state);
  }

  get minTokens(): number {
    return this.state.cost;
  }

  mask(remaining: number): Uint32Array {
    const budget = remaining - 1;
    const sig = signature(this.state);
    let cached = this.masks.get(sig);
    const trie = this.vocab.trie;
    if (!cached) {
      const bits = new Uint32Array(this.words);
      const runs: number[] = [];
      let maxCost = -1;
      walkTokens(trie, this.state, (from, to, cost) => {
        setBits(trie, bits, from, to);
        runs.push(from, to, cost);
        maxCost = Math.max(maxCost, cost);
      });
      if (this.masks.size >= MASK_CACHE_LIMIT) this.masks.clear();
      this.masks.set(sig, (cached = { bits, maxCost }));
      // Runs are kept only for states near the end of the budget, the only ones that need them.
      if (budget < maxCost) cached.runs = Int32Array.from(runs);
    }
    let bits = cached.bits;
    if (budget < cached.maxCost) {
      bits = new Uint32Array(this.words);
      if (!cached.runs) {
        const runs: number[] = [];
        walkTokens(trie, this.state, (from, to, cost) => runs.push(from, to, cost));
        cached.runs = Int32Array.from(runs);
      }
      const r = cached.runs;
      for (let i = 0; i < r.length; i += 3) if (r[i + 2] <= budget) setBits(trie, bits, r[i], r[i + 1]);
    }
    if (this.complete) {
      if (bits === cached.bits) bits = bits.slice();
      bits[this.eosId >>> 5] |= 1 << (this.eosId & 31);
    }
    return bits;
  }

  accept(id: number): void {
    if (id === this.eosId && this.complete) {
      this.ended = true;
      return;
    }
    let s: JsonState | null = this.state;
    for (const b of this.vocab.tokens[id] ?? []) {
      s = step(s, b);
      if (!s) break;
    }
    if (!s || !this.vocab.tokens[id]) {
      throw new LlamaWebGpuError('JSON_MASK', `Token ${id} does not continue the JSON output; the sampler must have ignored the mask. Report this with the schema.`);
    }
    this.state = s;
  }
}

/**
 * A constraint for `schema` over `vocab`. Throws JsonSchemaError for a schema that cannot be enforced, and a
 * JSON_VOCAB error for a vocab without one-token spellings of printable ASCII.
 */
export function jsonConstraint(vocab: Vocab, schema: unknown, eosId: number): JsonConstraint {
  return new JsonConstraint(jsonVocab(vocab), schema, eosId);
}
