/**
 * Incremental detokenization with SentencePiece's decoding rules (sentencepiece_processor.cc, Decode):
 * - CONTROL pieces (<s>, </s>) print nothing; the UNKNOWN piece prints unk_surface (" ⁇ ");
 * - U+2581 prints as a space, except the leading one of the first text piece when the model adds a dummy
 *   prefix (the space encoding put there), unless bytes or " ⁇ " were printed before it;
 * - a run of BYTE pieces is UTF-8: each complete, valid character prints as itself and each byte that starts
 *   no valid character prints as U+FFFD.
 * Bytes that may still complete a character are held until the next piece settles them.
 */
import { PieceType, SPACE_SYMBOL, bytePieceValue, type Vocab } from './vocab.ts';

export interface TokenDecoder {
  /** The text that `id` completes (possibly empty while a multi-byte character is split across byte tokens). */
  push(id: number): string;
  /** Whatever is still held (bytes of an unfinished character, as U+FFFD each); the decoder starts over. */
  flush(): string;
}

const REPLACEMENT = '\uFFFD';
// ignoreBOM: a U+FEFF at the start of a byte run is text like any other (the default decoder would drop it).
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

export class StreamDecoder implements TokenDecoder {
  private pending: number[] = [];
  private atStart = true;

  constructor(
    private readonly vocab: Vocab,
    private readonly addDummyPrefix: boolean,
    private readonly unkSurface: string,
    private readonly checkId: (id: number) => void,
    /** The output continues earlier text (a prompt), so its first space is real and is kept. */
    private readonly continuation = false,
  ) {
    this.atStart = !continuation;
  }

  push(id: number): string {
    this.checkId(id);
    const type = this.vocab.types[id];
    if (type === PieceType.BYTE) {
      this.pending.push(bytePieceValue(this.vocab.pieces[id]));
      return this.emit(this.takeBytes(false));
    }
    let text = this.takeBytes(true);
    if (text !== '') this.atStart = false;
    if (type === PieceType.CONTROL) return this.emit(text);
    if (type === PieceType.UNKNOWN) return this.emit(text + this.unkSurface);
    let piece = this.vocab.pieces[id];
    if (this.atStart && this.addDummyPrefix && piece.startsWith(SPACE_SYMBOL)) piece = piece.slice(1);
    // A text piece ends the start even when it printed nothing ("▁" alone): SentencePiece strips one leading space.
    this.atStart = false;
    return text + piece.replaceAll(SPACE_SYMBOL, ' ');
  }

  flush(): string {
    const text = this.takeBytes(true);
    this.pending = [];
    this.atStart = !this.continuation;
    return text;
  }

  /** Printed text ends the start of the output, where a leading space is dropped; control pieces print nothing. */
  private emit(text: string): string {
    if (text !== '') this.atStart = false;
    return text;
  }

  /** Decodes the held bytes; unless `final`, keeps a trailing prefix that later bytes may complete. */
  private takeBytes(final: boolean): string {
    const b = this.pending;
    let out = '';
    let i = 0;
    while (i < b.length) {
      const need = sequenceLength(b[i]);
      const available = Math.min(need, b.length - i);
      let trailOk = true;
      for (let k = 1; k < available; k++) if ((b[i + k] & 0xc0) !== 0x80) trailOk = false;
      if (!final && trailOk && available < need) break; // may still complete
      if (available === need && trailOk && isValidChar(b, i, need)) {
        out += utf8.decode(new Uint8Array(b.slice(i, i + need)));
        i += need;
      } else {
        out += REPLACEMENT;
        i += 1;
      }
    }
    this.pending = b.slice(i);
    return out;
  }
}

/** Length of the UTF-8 sequence a lead byte announces, by SentencePiece's masks (1 for ASCII and stray bytes). */
function sequenceLength(lead: number): number {
  if ((lead & 0xe0) === 0xc0) return 2;
  if ((lead & 0xf0) === 0xe0) return 3;
  if ((lead & 0xf8) === 0xf0) return 4;
  return 1;
}

/** SentencePiece's DecodeUTF8 checks for a complete sequence whose bytes are trail bytes: not overlong, not a
 *  surrogate, at most U+10FFFF. A lone byte is valid only if it is ASCII. */
function isValidChar(b: number[], i: number, n: number): boolean {
  const lead = b[i];
  if (n === 1) return lead < 0x80;
  let cp = lead & (n === 2 ? 0x1f : n === 3 ? 0x0f : 0x07);
  for (let k = 1; k < n; k++) cp = (cp << 6) | (b[i + k] & 0x3f);
  const min = n === 2 ? 0x80 : n === 3 ? 0x800 : 0x10000;
  return cp >= min && (cp < 0xd800 || (cp >= 0xe000 && cp <= 0x10ffff));
}
