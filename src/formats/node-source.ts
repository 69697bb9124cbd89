/** Node adapter: a file on disk as a ByteSource, read with positioned reads (never loaded whole). */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { checkRange, type ByteSource } from './source.ts';

export async function fileSource(file: string): Promise<ByteSource & { close(): Promise<void> }> {
  const handle = await open(file, 'r');
  const { size } = await handle.stat();
  const name = path.basename(file);
  return {
    name,
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange({ name, size }, offset, length);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) checkRange({ name, size: offset + done }, offset, length); // file shrank underneath us
        done += bytesRead;
      }
      return out;
    },
    close: () => handle.close(),
  };
}
