// HostKvCache with the peer-transfer half of KvCacheAccess, for tests: exportPeerHandle registers the
// cache in a process-wide registry under a random handle; copyFromPeer looks the handle up and copies
// all layers' K and V of each block pair (as the CUDA IPC path does with one kernel).
import { randomBytes } from 'node:crypto';
import { HostKvCache } from '../host-kv-cache.js';

const registry = new Map<string, HostKvCache>();

export class FakePeerKvCache extends HostKvCache {
  /** Set to make the next copies reject (peer unreachable). */
  failCopies: string | null = null;
  copies = 0;

  exportPeerHandle(): Uint8Array {
    const h = randomBytes(16);
    registry.set(h.toString('hex'), this);
    return h;
  }

  /** Drops this cache's handles (the peer process went away). */
  static forgetAll(): void {
    registry.clear();
  }

  async copyFromPeer(handle: Uint8Array, srcBlocks: Int32Array, dstBlocks: Int32Array): Promise<void> {
    if (this.failCopies) throw new Error(this.failCopies);
    const peer = registry.get(Buffer.from(handle).toString('hex'));
    if (!peer) throw new Error('unknown peer handle (peer gone?)');
    if (peer.bytesPerToken !== this.bytesPerToken || peer.blockSize !== this.blockSize) throw new Error('peer KV layout differs');
    if (srcBlocks.length !== dstBlocks.length) throw new RangeError('srcBlocks and dstBlocks differ in length');
    const blockBytes = this.blockSize * (this.bytesPerToken / (2 * this.numLayers));
    for (let i = 0; i < srcBlocks.length; i++) {
      const s = srcBlocks[i]!;
      const d = dstBlocks[i]!;
      if (s < 0 || s >= peer.numBlocks || d < 0 || d >= this.numBlocks) throw new RangeError(`block pair ${s} -> ${d} out of range`);
      for (let plane = 0; plane < 2 * this.numLayers; plane++) {
        const so = (plane * peer.numBlocks + s) * blockBytes;
        this.data.set(peer.data.subarray(so, so + blockBytes), (plane * this.numBlocks + d) * blockBytes);
      }
    }
    this.copies++;
  }
}
