// Finished requests whose blocks the KV connector still reads (requestFinished answered delayFree):
// their blocks stay allocated, and their ids known to the engine, until the connector reports them in
// getFinished().doneSending. Two kinds:
//   'final-waits': a save is in flight; the request's final output goes out only on release;
//   'sent':        the final output already went out carrying kvTransferParams (a peer reads the blocks).
import type { BlockManager } from './block-manager.js';
import type { Sequence } from './sequence.js';

export type HoldKind = 'final-waits' | 'sent';

export class HeldRequests {
  private readonly held = new Map<string, { seq: Sequence; kind: HoldKind }>();

  constructor(private readonly bm: BlockManager) {}

  get size(): number {
    return this.held.size;
  }

  get(requestId: string): Sequence | undefined {
    return this.held.get(requestId)?.seq;
  }

  /** Keeps a finished sequence's blocks (it must hold some). */
  hold(seq: Sequence, kind: HoldKind): void {
    this.held.set(seq.requestId, { seq, kind });
  }

  /** The connector let go of a request: frees its blocks; undefined when it was not held. */
  release(requestId: string): { seq: Sequence; kind: HoldKind } | undefined {
    const h = this.held.get(requestId);
    if (!h) return undefined;
    this.held.delete(requestId);
    this.bm.free(h.seq.blockTable);
    return h;
  }

  /** Block tables held, for integrity checks. */
  *tables(): Iterable<readonly number[]> {
    for (const h of this.held.values()) yield h.seq.blockTable;
  }
}
