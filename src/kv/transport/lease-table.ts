// Blocks a serving engine holds for a remote reader (pull) or writer (push), by request id.
// A lease lives ttlMs (default 30 s, vLLM's lease) from its grant or last renew (heartbeat); it ends
// on the done-notification ('done'), on abort of either leg ('abort'), or when it expires ('expired',
// logged as a warning). Each end calls onFree exactly once with the blocks, which the connector frees.
// The table owns no timers of its own beyond an optional sweeper; `now` is injectable (tests).
import type { Logger } from '../../util/logger.js';

export const DEFAULT_LEASE_MS = 30_000;

export type LeaseEnd = 'done' | 'abort' | 'expired';

export interface Lease {
  requestId: string;
  blockIds: Int32Array;
  /** the peer instance allowed to use it (null = any authenticated peer) */
  peerInstanceId: string | null;
  expiresAt: number;
  grantedAt: number;
  renewals: number;
}

export interface LeaseTableOptions {
  ttlMs?: number;
  now?: () => number;
  log?: Logger;
  onFree(requestId: string, blockIds: Int32Array, end: LeaseEnd): void;
}

export class LeaseTable {
  private readonly leases = new Map<string, Lease>();
  private readonly ttlMs: number;
  private readonly now: () => number;
  private sweeper: NodeJS.Timeout | null = null;
  readonly counters = { granted: 0, done: 0, aborted: 0, expired: 0, renewals: 0 };

  constructor(private readonly o: LeaseTableOptions) {
    this.ttlMs = o.ttlMs ?? DEFAULT_LEASE_MS;
    if (!(this.ttlMs > 0)) throw new RangeError('lease ttlMs must be positive');
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.leases.size;
  }

  /** Grants (or replaces: the old blocks are not freed twice, the new set wins) a lease. */
  grant(requestId: string, blockIds: readonly number[] | Int32Array, peerInstanceId: string | null = null): Lease {
    const t = this.now();
    const l: Lease = { requestId, blockIds: Int32Array.from(blockIds), peerInstanceId, grantedAt: t, expiresAt: t + this.ttlMs, renewals: 0 };
    this.leases.set(requestId, l);
    this.counters.granted++;
    return l;
  }

  get(requestId: string): Lease | undefined {
    return this.leases.get(requestId);
  }

  /** Heartbeat: pushes the expiry ttlMs past now. False when there is no such lease (freed or expired). */
  renew(requestId: string): boolean {
    const l = this.leases.get(requestId);
    if (!l || l.expiresAt <= this.now()) return false;
    l.expiresAt = this.now() + this.ttlMs;
    l.renewals++;
    this.counters.renewals++;
    return true;
  }

  /** Whether every id is under requestId's live lease (and the peer may use it): the transport's authorize. */
  covers(requestId: string, blockIds: Int32Array, peerInstanceId?: string): true | string {
    const l = this.leases.get(requestId);
    if (!l || l.expiresAt <= this.now()) return `no KV lease for request ${requestId} (never granted, freed or expired)`;
    if (l.peerInstanceId !== null && peerInstanceId !== undefined && l.peerInstanceId !== peerInstanceId) return `the KV lease of request ${requestId} belongs to another peer`;
    const held = new Set(l.blockIds);
    for (const b of blockIds) if (!held.has(b)) return `block ${b} is not leased to request ${requestId}`;
    return true;
  }

  /** Ends a lease ('done' or 'abort'); false when none was held (already freed: idempotent). */
  end(requestId: string, end: 'done' | 'abort'): boolean {
    const l = this.leases.get(requestId);
    if (!l) return false;
    this.leases.delete(requestId);
    this.counters[end === 'done' ? 'done' : 'aborted']++;
    this.o.onFree(requestId, l.blockIds, end);
    return true;
  }

  /** Frees every expired lease (with a warning each); returns how many. */
  sweep(): number {
    const t = this.now();
    let n = 0;
    for (const l of [...this.leases.values()]) {
      if (l.expiresAt > t) continue;
      this.leases.delete(l.requestId);
      this.counters.expired++;
      n++;
      this.o.log?.warn(
        `Reqid: ${l.requestId}: KV lease expired after ${((t - l.grantedAt) / 1000).toFixed(1)} s (${l.renewals} heartbeats) with no done-notification; freeing its ${l.blockIds.length} blocks`,
      );
      this.o.onFree(l.requestId, l.blockIds, 'expired');
    }
    return n;
  }

  /** Sweeps every intervalMs (unref'ed) until stop(). */
  start(intervalMs = Math.max(100, Math.min(1000, this.ttlMs / 10))): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), intervalMs);
    this.sweeper.unref();
  }

  /** Stops the sweeper; with abortAll, ends every lease as 'abort' (shutdown). */
  stop(abortAll = false): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    if (abortAll) for (const id of [...this.leases.keys()]) this.end(id, 'abort');
  }
}
