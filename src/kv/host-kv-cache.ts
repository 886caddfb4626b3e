// A KvCacheAccess over a JS buffer: the host-memory KV cache of `pdserve bench kv` and of the connector
// tests (stands in for the engine's native kvGather/kvScatter). Cache layout as the engine's (native/include/pds/backend.h):
// [layers, 2, blocks, blockSize, kv_heads*head_dim*dtype]; gather/scatter convert to/from the chunk
// layout [layers, 2, tokens, kv_heads, head_dim] with one memcpy per (layer, K|V, run of consecutive
// block ids) — a run is one contiguous region of the cache.
import type { KvCacheAccess } from '../engine/connector/base.js';

export class HostKvCache implements KvCacheAccess {
  readonly bytesPerToken: number;
  readonly data: Uint8Array;
  private readonly rowBytes: number; // one token of one layer's K (or V)

  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
    readonly numLayers: number,
    numKvHeads: number,
    headDim: number,
    dtypeBytes: number,
  ) {
    this.rowBytes = numKvHeads * headDim * dtypeBytes;
    this.bytesPerToken = numLayers * 2 * this.rowBytes;
    this.data = new Uint8Array(numBlocks * blockSize * this.bytesPerToken);
  }

  /** The cache bytes themselves (KvCacheAccess.hostRegion: the tcp transport reads and writes them in place). */
  hostRegion(): Uint8Array {
    return this.data;
  }

  private off(block: number, layer: number, kv: number, slot: number): number {
    return (((layer * 2 + kv) * this.numBlocks + block) * this.blockSize + slot) * this.rowBytes;
  }

  private check(blockIds: Int32Array, numTokens: number, buf: Uint8Array): void {
    if (Math.ceil(numTokens / this.blockSize) > blockIds.length) throw new RangeError(`${numTokens} tokens need more than ${blockIds.length} blocks`);
    if (buf.byteLength < numTokens * this.bytesPerToken) throw new RangeError(`buffer of ${buf.byteLength} bytes < ${numTokens * this.bytesPerToken}`);
    for (const b of blockIds) if (b < 0 || b >= this.numBlocks) throw new RangeError(`block id ${b} out of range`);
  }

  private copy(blockIds: Int32Array, numTokens: number, chunk: Uint8Array, toChunk: boolean): void {
    this.check(blockIds, numTokens, chunk);
    const rb = this.rowBytes;
    const bs = this.blockSize;
    // runs of consecutive block ids: [first block index j, block count]
    const runs: Array<[number, number]> = [];
    const nb = Math.ceil(numTokens / bs);
    for (let j = 0; j < nb; j++) {
      const last = runs[runs.length - 1];
      if (last && blockIds[last[0] + last[1] - 1]! + 1 === blockIds[j]) last[1]++;
      else runs.push([j, 1]);
    }
    for (let l = 0; l < this.numLayers; l++)
      for (let kv = 0; kv < 2; kv++) {
        const rowBase = (l * 2 + kv) * numTokens * rb;
        for (const [j, n] of runs) {
          const t = j * bs;
          const nt = Math.min(n * bs, numTokens - t);
          const o = this.off(blockIds[j]!, l, kv, 0);
          if (toChunk) chunk.set(this.data.subarray(o, o + nt * rb), rowBase + t * rb);
          else this.data.set(chunk.subarray(rowBase + t * rb, rowBase + (t + nt) * rb), o);
        }
      }
  }

  async gather(blockIds: Int32Array, numTokens: number, dst: Uint8Array): Promise<void> {
    this.copy(blockIds, numTokens, dst, true);
  }

  async scatter(blockIds: Int32Array, numTokens: number, src: Uint8Array): Promise<void> {
    this.copy(blockIds, numTokens, src, false);
  }

  /** Deterministic KV for tokens [from, to) of a request with these blocks (a function of position). */
  fill(blockIds: readonly number[], from: number, to: number, seed = 1): void {
    for (let t = from; t < to; t++) {
      const block = blockIds[Math.floor(t / this.blockSize)]!;
      for (let l = 0; l < this.numLayers; l++)
        for (let kv = 0; kv < 2; kv++) {
          const o = this.off(block, l, kv, t % this.blockSize);
          for (let i = 0; i < this.rowBytes; i++) this.data[o + i] = (t * 31 + l * 7 + kv * 3 + i + seed) & 0xff;
        }
    }
  }

  /** Tokens [0, n) of a request, in chunk layout (a copy). */
  read(blockIds: readonly number[], n: number): Uint8Array {
    const out = new Uint8Array(n * this.bytesPerToken);
    this.copy(Int32Array.from(blockIds), n, out, true);
    return out;
  }
}
