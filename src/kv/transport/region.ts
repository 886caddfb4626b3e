// Byte math over a registered region: which spans of the region a block list covers, in wire order.
// Wire order of a block list [b0, b1, ...]: for each row r in 0..2*layers (layer-major, K then V), the
// segments of b0, b1, ... in list order. Consecutive block ids of one row are one contiguous span, so
// a run of consecutive ids is one span (one iovec on the send side, one receive target on the other).
import { checkIdentity, checkLayout } from './compat.js';
import { KvTransportError, type KvLayout, type KvRegion } from './transport.js';

/** [offset, length] in the region's bytes */
export type Span = [number, number];

export function segBytes(l: KvLayout): number {
  return l.blockSize * l.rowBytes;
}

/** Bytes a list of n blocks occupies on the wire. */
export function wireBytes(l: KvLayout, n: number): number {
  return n * 2 * l.numLayers * segBytes(l);
}

/** Throws KvTransportError('protocol') unless every id is an in-range block of the layout. */
export function checkBlockIds(l: KvLayout, ids: Int32Array): void {
  for (let i = 0; i < ids.length; i++) {
    const b = ids[i]!;
    if (b < 0 || b >= l.numBlocks) throw new KvTransportError('protocol', `block id ${b} out of range [0, ${l.numBlocks})`);
  }
}

/** The spans of the region that blocks `ids` cover, in wire order; runs of consecutive ids merged. */
export function spansOf(l: KvLayout, ids: Int32Array): Span[] {
  const seg = segBytes(l);
  const runs: Array<[number, number]> = []; // [first block id, count]
  for (let i = 0; i < ids.length; i++) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === ids[i]) last[1]++;
    else runs.push([ids[i]!, 1]);
  }
  const out: Span[] = [];
  for (let r = 0; r < 2 * l.numLayers; r++)
    for (const [b, n] of runs) out.push([(r * l.numBlocks + b) * seg, n * seg]);
  return out;
}

/** Validates a region once, at registration. */
export function checkRegion(region: KvRegion): void {
  const id = checkIdentity(region.identity);
  const l = checkLayout(region.layout);
  if (l.blockSize !== id.blockSize || l.numLayers !== id.numLayers)
    throw new KvTransportError('protocol', 'KV region: layout and identity disagree on block size or layers');
  const need = 2 * l.numLayers * l.numBlocks * segBytes(l);
  if (region.bytes.byteLength !== need) throw new KvTransportError('protocol', `KV region holds ${region.bytes.byteLength} bytes; its layout needs ${need}`);
}

/** A Buffer over region bytes [off, off+len) (no copy; shares the memory). */
export function viewOf(bytes: Uint8Array, off: number, len: number): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset + off, len);
}
