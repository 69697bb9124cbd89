/**
 * Frees bytes the caller owns now instead of at the garbage collector's next run. A shard or IndexedDB piece is
 * tens of megabytes outside the JS heap proper; the collector frees such ArrayBuffers only once enough of them have
 * piled up, so a loader that drops a shard per step would hold several dead shards at once. Detaching the buffer
 * (ArrayBuffer.prototype.transfer(0)) releases its memory at once; afterwards every view of it is empty.
 *
 * Does nothing where transfer() is missing (Node 20) or when the view does not span its whole buffer (the buffer
 * may hold other data).
 */
export function releaseBytes(bytes: Uint8Array): void {
  const buffer = bytes.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
  if (typeof buffer.transfer !== 'function' || bytes.byteOffset !== 0 || bytes.byteLength !== buffer.byteLength) return;
  buffer.transfer(0);
}
