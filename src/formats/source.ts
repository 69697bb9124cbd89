/**
 * Random-access bytes: the one interface every checkpoint reader consumes, so readers stream from a Node file
 * handle (node-source.ts) or a browser Blob/File alike and never need a whole checkpoint in memory.
 */
import { ModelFormatError } from '../errors.ts';

export interface ByteSource {
  /** File name used in error messages. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`; a range past the end is a ModelFormatError. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export function checkRange(source: { name: string; size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size) {
    throw new ModelFormatError(
      source.name,
      `read of ${length} bytes at offset ${offset} is past the end of the ${source.size}-byte file; the file is truncated or corrupt, download it again`,
    );
  }
}

/** A Blob or File (browser, or Node's global Blob). */
export function blobSource(blob: Blob, name?: string): ByteSource {
  const fileName = name ?? ((blob as Partial<File>).name || 'blob');
  return {
    name: fileName,
    size: blob.size,
    async read(offset, length) {
      checkRange({ name: fileName, size: blob.size }, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/** Bytes already in memory (small files: config.json, tokenizers, test fixtures). */
export function memorySource(bytes: Uint8Array, name: string): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async read(offset, length) {
      checkRange({ name, size: bytes.byteLength }, offset, length);
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** The whole source, for files small enough to hold (config.json, tokenizer.model); `limit` guards against surprises. */
export async function readAll(source: ByteSource, limit: number): Promise<Uint8Array> {
  if (source.size > limit) {
    throw new ModelFormatError(source.name, `file is ${source.size} bytes, more than the ${limit} expected for this kind of file; check that the right file was given`);
  }
  return source.read(0, source.size);
}
