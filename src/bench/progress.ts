// A tqdm-like progress line on stderr, drawn only when stderr is a TTY (at most 10 times a second).
export class Progress {
  private done = 0;
  private lastDraw = 0;
  private readonly t0 = performance.now();
  private readonly enabled: boolean;

  constructor(private readonly total: number, private readonly out: NodeJS.WriteStream = process.stderr, disabled = false) {
    this.enabled = !disabled && !!out.isTTY;
  }

  tick(): void {
    this.done++;
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw >= 100 || this.done === this.total) {
      this.lastDraw = now;
      this.draw(now);
    }
  }

  finish(): void {
    if (!this.enabled) return;
    this.draw(performance.now());
    this.out.write('\n');
  }

  private draw(now: number): void {
    const el = (now - this.t0) / 1000;
    const frac = this.total ? this.done / this.total : 1;
    const width = 30;
    const full = Math.floor(frac * width);
    const bar = '█'.repeat(full) + ' '.repeat(width - full);
    const rate = el > 0 ? this.done / el : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : 0;
    this.out.write(`\r${String(Math.floor(frac * 100)).padStart(3)}%|${bar}| ${this.done}/${this.total} [${clock(el)}<${clock(eta)}, ${rate.toFixed(2)} req/s]`);
  }
}

function clock(s: number): string {
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, '0')}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}
