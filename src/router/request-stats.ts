// Per-engine request stats over the last --request-stats-window (vllm_router's RequestStatsMonitor):
// QPS, average latency and ITL, TTFT percentiles, requests in prefill / decode now, and the
// most recent request records (the dashboard's timeline). Memory is bounded: at most MAX_SAMPLES
// finished records are kept, oldest dropped first.
import type { RequestRecord } from '../gateway/hooks.js';
import { percentile } from '../gateway/stats-window.js';

const MAX_SAMPLES = 20_000;
const RECENT = 50;

export interface ServerStats {
  qps: number;
  avgLatencyS: number; // arrival -> last byte, finished requests in the window
  avgItlS: number; // (last - first byte) / (chunks - 1), streamed requests with >= 2 chunks
  ttftP50Ms: number;
  ttftP99Ms: number;
  itlP50Ms: number;
  itlP99Ms: number;
  inPrefill: number; // running now: prefill leg on this server
  inDecode: number; // running now: decode leg on this server
  finished: number; // in the window
  avgDecodingLength: number; // chunks per finished request (about tokens when streaming)
}

export class RequestStats {
  private readonly done: RequestRecord[] = [];
  private readonly running = new Set<RequestRecord>();
  readonly recent: RequestRecord[] = [];
  total = 0;

  constructor(readonly windowMs: number) {}

  start(r: RequestRecord): void {
    this.running.add(r);
    this.total++;
  }

  finish(r: RequestRecord): void {
    this.running.delete(r);
    this.done.push(r);
    if (this.done.length > MAX_SAMPLES) this.done.splice(0, this.done.length - MAX_SAMPLES);
    this.recent.push(r);
    if (this.recent.length > RECENT) this.recent.shift();
  }

  get inflight(): number {
    return this.running.size;
  }

  private windowed(now: number): RequestRecord[] {
    const from = now - this.windowMs;
    let i = 0;
    while (i < this.done.length && this.done[i]!.arrivedAt < from) i++;
    if (i) this.done.splice(0, i);
    return this.done;
  }

  /** Stats of one server (its origin); every request counts for the server that decoded it, and its
   *  prefill for the server that prefilled it (qps counts both legs). */
  of(origin: string, now = Date.now()): ServerStats {
    const w = this.windowed(now).filter((r) => r.decodeOrigin === origin || r.prefillOrigin === origin);
    const s = summaryOf(w.filter((r) => r.decodeOrigin === origin), this.windowMs);
    let inPrefill = 0;
    let inDecode = 0;
    for (const r of this.running) {
      if (r.decodeOrigin === origin) inDecode++;
      else if (r.prefillOrigin === origin && r.decodeStartMs === null) inPrefill++;
    }
    return { ...s, qps: w.length / (this.windowMs / 1000), inPrefill, inDecode };
  }

  /** The same over every request of the window, whichever engines served it (the dashboard's totals). */
  overall(now = Date.now()): ServerStats {
    const w = this.windowed(now);
    let inPrefill = 0;
    for (const r of this.running) if (r.decodeStartMs === null) inPrefill++;
    return { ...summaryOf(w, this.windowMs), inPrefill, inDecode: this.running.size - inPrefill };
  }
}

/** Latency summary of finished records (qps: all of them over the window; no running counts). */
function summaryOf(w: RequestRecord[], windowMs: number): ServerStats {
  const decoded = w.filter((r) => r.outcome === 'ok' && r.lastByteMs !== null);
  const ttfts = decoded.map((r) => r.firstByteMs!).filter((x) => x !== null).sort((a, b) => a - b);
  const itls = decoded.filter((r) => r.chunks >= 2).map((r) => (r.lastByteMs! - r.firstByteMs!) / (r.chunks - 1)).sort((a, b) => a - b);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  return {
    qps: w.length / (windowMs / 1000),
    avgLatencyS: mean(decoded.map((r) => r.lastByteMs!)) / 1000,
    avgItlS: mean(itls) / 1000,
    ttftP50Ms: ttfts.length ? percentile(ttfts, 50) : 0,
    ttftP99Ms: ttfts.length ? percentile(ttfts, 99) : 0,
    itlP50Ms: itls.length ? percentile(itls, 50) : 0,
    itlP99Ms: itls.length ? percentile(itls, 99) : 0,
    inPrefill: 0,
    inDecode: 0,
    finished: decoded.length,
    avgDecodingLength: mean(decoded.map((r) => r.chunks)),
  };
}
