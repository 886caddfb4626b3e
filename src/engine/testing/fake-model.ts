// A deterministic stand-in for the native model, for scheduler/engine tests: the "KV cache" is a
// slot -> (token, position) map, and each logits row depends on every cached token of its sequence,
// so a wrong block table, slot mapping or context length changes the output.
import type { ForwardBatch } from '../../native/binding.js';
import type { ForwardModel } from '../model-runner.js';

export class FakeModel implements ForwardModel {
  private readonly slots = new Map<number, number>(); // slot -> token*1e6+pos
  forwards = 0;
  delayMs = 0;

  constructor(
    readonly vocabSize: number,
    readonly blockSize: number,
  ) {}

  async forward(b: ForwardBatch): Promise<Float32Array> {
    this.forwards++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    for (let t = 0; t < b.tokenIds.length; t++) this.slots.set(b.slotMapping[t]!, b.tokenIds[t]! * 1e6 + b.positions[t]!);
    const V = this.vocabSize;
    const out = new Float32Array(b.logitsIndices.length * V);
    b.logitsIndices.forEach((row, r) => {
      let s = 0;
      while (!(b.queryStartLoc[s + 1]! > row)) s++;
      const pos = b.positions[row]!;
      let h = 17;
      for (let p = 0; p <= pos; p++) {
        const block = b.blockTables[s * b.maxBlocksPerSeq + Math.floor(p / this.blockSize)]!;
        const v = this.slots.get(block * this.blockSize + (p % this.blockSize));
        if (v === undefined || v % 1e6 !== p) throw new Error(`fake model: missing KV for position ${p}`);
        h = (Math.imul(h, 31) + Math.floor(v / 1e6) + 1) >>> 0;
      }
      for (let i = 0; i < V; i++) out[r * V + i] = Math.sin(h * 0.001 + i * 0.37) * 3;
      out[r * V + (h % V)] = 10; // a clear argmax
    });
    return out;
  }

  /** KV as host bytes: one float64 (token*1e6+pos, NaN = empty) per token, blocks in order. */
  kvBytesPerToken(): number {
    return 8;
  }
  async kvGather(blockIds: Int32Array, numTokens: number, dst: Uint8Array): Promise<void> {
    const v = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
    for (let t = 0; t < numTokens; t++) v.setFloat64(t * 8, this.slots.get(blockIds[Math.floor(t / this.blockSize)]! * this.blockSize + (t % this.blockSize)) ?? NaN);
  }
  async kvScatter(blockIds: Int32Array, numTokens: number, src: Uint8Array): Promise<void> {
    const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
    for (let t = 0; t < numTokens; t++) {
      const slot = blockIds[Math.floor(t / this.blockSize)]! * this.blockSize + (t % this.blockSize);
      const x = v.getFloat64(t * 8);
      if (Number.isNaN(x)) this.slots.delete(slot);
      else this.slots.set(slot, x);
    }
  }

  /** Copies whole blocks' cached (token, position) from another fake model: the peer KV copy of tests. */
  copyBlocksFrom(peer: FakeModel, src: ArrayLike<number>, dst: ArrayLike<number>): void {
    const bs = this.blockSize;
    for (let i = 0; i < src.length; i++)
      for (let o = 0; o < bs; o++) {
        const v = peer.slots.get(src[i]! * bs + o);
        if (v === undefined) this.slots.delete(dst[i]! * bs + o);
        else this.slots.set(dst[i]! * bs + o, v);
      }
  }
}
