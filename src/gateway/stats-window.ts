// Latency samples between two stats prints, and the vLLM-proxy-shaped report of them (in real ms).

export interface Summary {
  count: number;
  averageMs: number;
  medianMs: number;
  p99Ms: number;
}

/** Percentile with linear interpolation between closest ranks (numpy's default). sorted ascending. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function summarize(samplesMs: number[]): Summary {
  const s = [...samplesMs].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return { count: s.length, averageMs: s.length ? sum / s.length : NaN, medianMs: percentile(s, 50), p99Ms: percentile(s, 99) };
}

export class StatsWindow {
  private requests = 0;
  private total = 0;
  private prefillMs: number[] = [];
  private decodeTtftMs: number[] = [];

  /** Counts a finished request (any outcome); samples are added as legs finish. */
  addRequest(): void {
    this.requests++;
    this.total++;
  }
  addPrefill(ms: number): void {
    this.prefillMs.push(ms);
  }
  addDecodeTtft(ms: number): void {
    this.decodeTtftMs.push(ms);
  }

  /** The report for the window, or null when there was no traffic; resets the window. */
  drain(): string | null {
    if (!this.requests) return null;
    const block = (title: string, xs: number[]) => {
      const s = summarize(xs);
      const f = (v: number) => (Number.isNaN(v) ? 'n/a' : v.toFixed(2));
      return `${title}\n - Average (ms): ${f(s.averageMs)}\n - Median (ms): ${f(s.medianMs)}\n - 99th Percentile (ms): ${f(s.p99Ms)}`;
    };
    const bar = '===============================';
    const out = [
      bar,
      `Num requests: ${this.requests}`,
      `Total requests: ${this.total}`,
      block('Prefill node TTFT stats:', this.prefillMs),
      block('Decode node TTFT stats:', this.decodeTtftMs),
      bar,
    ].join('\n');
    this.requests = 0;
    this.prefillMs = [];
    this.decodeTtftMs = [];
    return out;
  }
}
