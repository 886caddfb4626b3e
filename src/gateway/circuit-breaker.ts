// A circuit breaker per engine: `failures` failed legs in a row (5xx, reset, timeout, unreachable)
// open it for cooldownMs (doubling on each reopening, at most 16x); then it lets one trial request
// through (half-open): a success closes it, a failure opens it again. failures 0 = off (always closed).
export type BreakerState = 'closed' | 'open' | 'half_open';

export class CircuitBreaker {
  private fails = 0;
  private openedAt = 0;
  private opens = 0; // consecutive openings (cooldown doubling)
  private trial = false; // a half-open trial is in flight
  state: BreakerState = 'closed';
  /** times it opened, cumulative (metrics) */
  openedTotal = 0;

  constructor(readonly failures: number, readonly cooldownMs: number, private readonly now: () => number = Date.now) {}

  /** May a request go to this engine now? Takes the half-open trial slot when it answers true there. */
  allows(): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') {
      if (this.now() - this.openedAt < this.cooldownMs * Math.min(16, 2 ** (this.opens - 1))) return false;
      this.state = 'half_open';
      this.trial = false;
    }
    if (this.trial) return false;
    this.trial = true;
    return true;
  }

  /** Read-only view: would allows() say true (no slot taken)? */
  get passable(): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') return this.now() - this.openedAt >= this.cooldownMs * Math.min(16, 2 ** (this.opens - 1));
    return !this.trial;
  }

  success(): void {
    this.fails = 0;
    this.opens = 0;
    this.trial = false;
    this.state = 'closed';
  }

  failure(): void {
    if (this.failures <= 0) return;
    this.trial = false;
    if (this.state === 'half_open' || ++this.fails >= this.failures) {
      this.state = 'open';
      this.openedAt = this.now();
      this.opens++;
      this.openedTotal++;
      this.fails = 0;
    }
  }
}
