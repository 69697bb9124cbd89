/**
 * Sequential little-endian reads over a ByteSource through a sliding window, for parsing headers (GGUF metadata,
 * safetensors JSON) without reading the tensor data behind them. Every read is bounds-checked against the file
 * size first, so a corrupt length field becomes a ModelFormatError instead of a huge allocation.
 */
import { ModelFormatError } from '../errors.ts';
import type { ByteSource } from './source.ts';

const WINDOW = 1 << 20;
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class Cursor {
  pos: number;
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private bufStart = 0;

  constructor(readonly source: ByteSource, start = 0) {
    this.pos = start;
  }

  /** Makes [pos, pos + n) readable synchronously; `what` names the field for the error message. */
  async need(n: number, what: string): Promise<void> {
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.byteLength) return;
    if (!Number.isSafeInteger(n) || n < 0 || this.pos + n > this.source.size) {
      throw new ModelFormatError(this.source.name, `file ends before the end of this field (needs ${n} bytes at offset ${this.pos}, file is ${this.source.size} bytes); the file is truncated or corrupt`, what);
    }
    const len = Math.min(Math.max(n, WINDOW), this.source.size - this.pos);
    this.buf = await this.source.read(this.pos, len);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.bufStart = this.pos;
  }

  private at(n: number): number {
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }

  u8(): number { return this.view.getUint8(this.at(1)); }
  i8(): number { return this.view.getInt8(this.at(1)); }
  u16(): number { return this.view.getUint16(this.at(2), true); }
  i16(): number { return this.view.getInt16(this.at(2), true); }
  u32(): number { return this.view.getUint32(this.at(4), true); }
  i32(): number { return this.view.getInt32(this.at(4), true); }
  /** Big-endian (msgpack). */
  u16BE(): number { return this.view.getUint16(this.at(2), false); }
  u32BE(): number { return this.view.getUint32(this.at(4), false); }
  f32(): number { return this.view.getFloat32(this.at(4), true); }
  f64(): number { return this.view.getFloat64(this.at(8), true); }
  /** A 64-bit unsigned as a number; values past 2^53 are a format error (no real file has them). */
  u64(what: string): number {
    const v = this.view.getBigUint64(this.at(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ModelFormatError(this.source.name, `value ${v} is implausibly large; the file is corrupt`, what);
    return Number(v);
  }
  i64(what: string): number {
    const v = this.view.getBigInt64(this.at(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new ModelFormatError(this.source.name, `value ${v} is out of range; the file is corrupt`, what);
    return Number(v);
  }
  bytes(n: number): Uint8Array {
    const o = this.at(n);
    return this.buf.subarray(o, o + n);
  }
  /** `n` bytes as text, invalid UTF-8 replaced by U+FFFD. */
  utf8(n: number): string {
    return decoder.decode(this.bytes(n));
  }
  /** `n` bytes as text, or undefined when they are not valid UTF-8. */
  utf8Strict(n: number): string | undefined {
    try {
      return strictDecoder.decode(this.bytes(n));
    } catch {
      return undefined;
    }
  }
}
