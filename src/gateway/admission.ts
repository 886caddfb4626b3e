// Admission control: at most maxInflight requests run; up to maxQueue more wait in FIFO order, each
// at most queueTimeoutMs; beyond that (or after the wait) the caller answers 429. maxInflight 0 =
// unlimited. A waiter whose client left is dropped from the queue.
export class Admission {
  private running = 0;
  private readonly queue: { grant: (ok: boolean) => void }[] = [];

  constructor(readonly maxInflight: number, readonly maxQueue: number, readonly queueTimeoutMs: number) {}

  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves true when admitted (call release() once done), false when refused. */
  acquire(signal?: AbortSignal): Promise<boolean> | boolean {
    if (this.maxInflight <= 0 || this.running < this.maxInflight) {
      this.running++;
      return true;
    }
    if (this.queue.length >= this.maxQueue) return false;
    return new Promise<boolean>((resolve) => {
      const entry = {
        grant: (ok: boolean) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(ok);
        },
      };
      const drop = () => {
        const i = this.queue.indexOf(entry);
        if (i >= 0) this.queue.splice(i, 1);
        entry.grant(false);
      };
      const onAbort = () => drop();
      const timer = setTimeout(drop, this.queueTimeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(entry);
    });
  }

  release(): void {
    const next = this.queue.shift();
    if (next) next.grant(true); // the slot passes on: running stays the same
    else this.running--;
  }
}
