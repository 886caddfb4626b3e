// A role's upstreams: round-robin choice over healthy ones, and the background health checker.
import { Upstream, type Role, type UpstreamOptions } from './upstream.js';
import { getLogger } from '../util/logger.js';

const log = getLogger('proxy');

export class UpstreamSet {
  readonly role: Role;
  readonly all: Upstream[];
  private next = 0;

  constructor(role: Role, origins: string[], opts: UpstreamOptions) {
    this.role = role;
    this.all = origins.map((o) => new Upstream(o, role, opts));
  }

  get size(): number {
    return this.all.length;
  }

  healthyCount(): number {
    return this.all.filter((u) => u.healthy).length;
  }

  /**
   * Candidates for one request, each at most once: the healthy ones starting at the round-robin
   * cursor, then, with withUnhealthy (a last resort in case health state is stale), the unhealthy ones.
   * Advances the cursor by one per call.
   */
  candidates(withUnhealthy = true): Upstream[] {
    const n = this.all.length;
    if (!n) return [];
    const start = this.next++ % n;
    if (this.next >= n * 1_000_000) this.next %= n;
    const ordered = Array.from({ length: n }, (_, i) => this.all[(start + i) % n]!);
    return [...ordered.filter((u) => u.healthy), ...(withUnhealthy ? ordered.filter((u) => !u.healthy) : [])];
  }

  /** Probe every upstream once; logs state changes. */
  async checkAll(timeoutMs: number, onChange?: (u: Upstream) => void): Promise<void> {
    await Promise.all(
      this.all.map(async (u) => {
        const ok = await u.probe(timeoutMs);
        if (ok === u.healthy) return;
        if (ok) {
          u.markUp();
          log.info(`${this.role} instance ${u.origin} is healthy again`);
        } else {
          u.markDown(u.lastError ?? 'health check failed');
          log.warn(`${this.role} instance ${u.origin} is down: ${u.lastError}`);
        }
        onChange?.(u);
      }),
    );
  }

  closeAll(): Promise<void> {
    return Promise.all(this.all.map((u) => u.close())).then(() => undefined);
  }
}
