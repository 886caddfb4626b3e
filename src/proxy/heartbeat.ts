// Liveness of an engine while legs wait on it: one probe loop per upstream (GET /health every
// intervalMs, each bounded by timeoutMs), running only while some leg watches. `misses` failed
// probes in a row = frozen (SIGSTOP, a wedged event loop): every watcher is told at once and the
// upstream is marked down, so a frozen engine costs a waiting request seconds, not the leg's timeout.
import type { Upstream } from './upstream.js';

export class Heartbeat {
  private readonly watchers = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private beating = false; // a probe is in flight
  private missed = 0;

  constructor(
    private readonly up: Upstream,
    readonly intervalMs: number,
    readonly timeoutMs: number,
    readonly misses = 2,
  ) {}

  /** Calls onFrozen (once) if the upstream stops answering while watched; returns the unwatch function. */
  watch(onFrozen: () => void): () => void {
    this.watchers.add(onFrozen);
    this.arm();
    return () => {
      this.watchers.delete(onFrozen);
      if (!this.watchers.size && this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
        this.missed = 0;
      }
    };
  }

  get watching(): number {
    return this.watchers.size;
  }

  private arm(): void {
    if (this.timer || this.beating || !this.watchers.size) return;
    this.timer = setTimeout(() => void this.beat(), this.intervalMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    this.timer = null;
    this.beating = true;
    const ok = await this.up.probe(this.timeoutMs);
    this.beating = false;
    if (!this.watchers.size) {
      this.missed = 0;
      return;
    }
    if (ok) this.missed = 0;
    else if (++this.missed >= this.misses) {
      this.missed = 0;
      this.up.markDown(`no answer to ${this.misses} heartbeats (${this.up.lastError ?? 'health check failed'})`);
      const told = [...this.watchers];
      this.watchers.clear();
      for (const w of told) w();
      return;
    }
    this.arm();
  }
}
