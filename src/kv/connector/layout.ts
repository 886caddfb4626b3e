// KV chunk layout helpers. A stored chunk of T tokens is [layers, 2, T, kv_heads, head_dim] in the KV
// dtype: 2*layers rows of T*rowBytes bytes, rowBytes = bytesPerToken / (2*layers) per token.

/** Blocks holding tokens [a, b) of a request whose block i holds tokens [i*bs, (i+1)*bs); a % bs == 0. */
export function blocksFor(blockIds: readonly number[], blockSize: number, a: number, b: number): Int32Array {
  if (a % blockSize) throw new RangeError(`blocksFor: start ${a} is not a multiple of the block size ${blockSize}`);
  const first = a / blockSize;
  const last = Math.ceil(b / blockSize);
  if (last > blockIds.length) throw new RangeError(`blocksFor: tokens up to ${b} need ${last} blocks, the request has ${blockIds.length}`);
  return Int32Array.from(blockIds.slice(first, last));
}

/**
 * Tokens [x, y) of a chunk of T tokens, repacked as a chunk of y-x tokens (copies 2*layers rows).
 * src: [layers, 2, T, ...]  ->  [layers, 2, y-x, ...]
 */
export function sliceTokens(src: Uint8Array, numLayers: number, T: number, x: number, y: number): Uint8Array {
  const rows = 2 * numLayers;
  const tokBytes = src.byteLength / (rows * T);
  if (!Number.isInteger(tokBytes)) throw new RangeError(`sliceTokens: ${src.byteLength} bytes is not ${rows} rows of ${T} tokens`);
  if (x === 0 && y === T) return src;
  const n = y - x;
  const out = new Uint8Array(rows * n * tokBytes);
  for (let r = 0; r < rows; r++) out.set(src.subarray((r * T + x) * tokBytes, (r * T + y) * tokBytes), r * n * tokBytes);
  return out;
}

const GB = 2 ** 30;

/** LMCache's store line (anchors §3). */
export function storedLine(stored: number, total: number, bytes: number, ms: number, offloadMs: number, putMs: number): string {
  return (
    `Stored ${stored} out of total ${total} tokens. size: ${(bytes / GB).toFixed(4)} gb, cost ${ms.toFixed(4)} ms, ` +
    `throughput: ${(ms > 0 ? bytes / GB / (ms / 1000) : 0).toFixed(4)} GB/s; offload_time: ${offloadMs.toFixed(4)} ms, put_time: ${putMs.toFixed(4)} ms`
  );
}

/** LMCache's retrieve line (anchors §3). */
export function retrievedLine(retrieved: number, required: number, total: number, bytes: number, ms: number): string {
  return (
    `Retrieved ${retrieved} out of ${required} required tokens (from ${total} total tokens). size: ${(bytes / GB).toFixed(4)} gb, ` +
    `cost ${ms.toFixed(4)} ms, throughput: ${(ms > 0 ? bytes / GB / (ms / 1000) : 0).toFixed(4)} GB/s;`
  );
}

/** LMCache's lookup line (anchors §3). */
export function lookupLine(reqId: string, total: number, computed: number, hit: number, need: number): string {
  return `Reqid: ${reqId}, Total tokens ${total}, Inference Engine computed tokens: ${computed}, LMCache hit tokens: ${hit}, need to load: ${need}`;
}

/** The retrieve line of a point-to-point transfer: LMCache's line plus the channel. */
export function retrievedPeerLine(retrieved: number, required: number, total: number, bytes: number, ms: number, channel: string): string {
  return `${retrievedLine(retrieved, required, total, bytes, ms)} (GPU→GPU ${channel})`;
}
