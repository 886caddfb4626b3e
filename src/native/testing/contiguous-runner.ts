// A minimal single-sequence driver over NativeModel with a contiguous block table (blocks firstBlock,
// firstBlock+1, ...), for tests and benchmarks: prefill in chunks, then decode. The real engine schedules
// batches itself.
import type { NativeModel } from '../binding.js';

export class ContiguousRunner {
  private len = 0;
  constructor(
    private readonly model: NativeModel,
    private readonly vocab: number,
    private readonly blockSize: number,
    private readonly maxBlocks: number,
    private readonly firstBlock = 0,
  ) {}

  /** Appends tokens (one forward) and returns the logits of the last one. */
  async append(tokens: number[]): Promise<Float32Array> {
    const n = tokens.length;
    const start = this.len;
    this.len += n;
    if (this.len > this.maxBlocks * this.blockSize) throw new Error('ContiguousRunner: sequence exceeds the block table');
    const positions = Int32Array.from({ length: n }, (_, i) => start + i);
    const logits = await this.model.forward({
      tokenIds: Int32Array.from(tokens),
      positions,
      slotMapping: positions.map((p) => p + this.firstBlock * this.blockSize),
      queryStartLoc: Int32Array.from([0, n]),
      contextLens: Int32Array.from([this.len]),
      blockTables: Int32Array.from({ length: this.maxBlocks }, (_, i) => i + this.firstBlock),
      maxBlocksPerSeq: this.maxBlocks,
      logitsIndices: Int32Array.from([n - 1]),
    });
    if (logits.length !== this.vocab) throw new Error(`expected ${this.vocab} logits, got ${logits.length}`);
    return logits;
  }
}

export function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
