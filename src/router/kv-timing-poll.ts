// Fills the KV segment of finished request records: asks each decoder, in batches, for the KV load
// timing it kept under the records' timing ids (POST /v1/kv/timing, signed with the internal secret;
// the engine side and why this channel: src/server/kv-timing.ts). Runs after the response was relayed,
// so the client never waits for it. Bounded: at most MAX_PENDING records wait (oldest dropped), one
// batch of at most BATCH ids per decoder per flush, each call cut after TIMEOUT_MS; a failing or
// vLLM decoder (404) leaves kv null.
import type { RequestRecord } from '../gateway/hooks.js';
import type { Upstream } from '../gateway/upstream.js';
import { signRequest } from '../security/request-signing.js';
import { getLogger } from '../util/logger.js';

const log = getLogger('router');
const PATH = '/v1/kv/timing';
const FLUSH_MS = 100;
const BATCH = 256;
const MAX_PENDING = 4096;
const TIMEOUT_MS = 2000;

interface TimingJson { lookup_start_ms: number; load_start_ms: number | null; load_end_ms: number | null; load_ms: number; tokens: number; bytes: number }

export class KvTimingPoller {
  private readonly pending: RequestRecord[] = [];
  private timer: NodeJS.Timeout | null = null;
  private warned = new Set<string>();

  constructor(private readonly key: Buffer, private readonly upstreamOf: (origin: string) => Upstream | undefined, private readonly extraHeaders: () => Record<string, string> = () => ({})) {}

  /** A finished record; asked about only when its decode leg carried a timing id. */
  add(r: RequestRecord): void {
    if (!r.timingId || !r.decodeOrigin || r.firstByteMs === null) return;
    this.pending.push(r);
    if (this.pending.length > MAX_PENDING) this.pending.splice(0, this.pending.length - MAX_PENDING);
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  /** Sends one batch per decoder now (tests call it; the timer does otherwise). */
  async flush(): Promise<void> {
    this.timer = null;
    const byOrigin = new Map<string, RequestRecord[]>();
    for (const r of this.pending.splice(0)) {
      const l = byOrigin.get(r.decodeOrigin!) ?? [];
      if (l.length < BATCH) l.push(r);
      else this.pending.push(r);
      byOrigin.set(r.decodeOrigin!, l);
    }
    if (this.pending.length) this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
    await Promise.all([...byOrigin].map(([origin, recs]) => this.ask(origin, recs)));
  }

  private async ask(origin: string, recs: RequestRecord[]): Promise<void> {
    const up = this.upstreamOf(origin);
    if (!up) return;
    const body = JSON.stringify({ ids: recs.map((r) => r.timingId!) });
    try {
      const res = await up.pool.request({
        path: PATH, method: 'POST', body,
        headers: { 'content-type': 'application/json', ...this.extraHeaders(), ...signRequest(this.key, 'POST', PATH, body) },
        headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS, signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) {
        if (!this.warned.has(origin)) log.warn(`decoder ${origin} gave no KV timing (HTTP ${res.statusCode}); its requests' KV segment stays unknown`);
        this.warned.add(origin);
        return;
      }
      const timings = (JSON.parse(text) as { timings?: Record<string, TimingJson> }).timings ?? {};
      for (const r of recs) {
        const t = timings[r.timingId!];
        if (!t || typeof t.lookup_start_ms !== 'number' || typeof t.load_ms !== 'number') continue;
        const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
        r.kv = { lookupStartMs: t.lookup_start_ms, loadStartMs: num(t.load_start_ms), loadEndMs: num(t.load_end_ms), loadMs: t.load_ms, tokens: num(t.tokens) ?? 0, bytes: num(t.bytes) ?? 0 };
      }
    } catch (e) {
      if (!this.warned.has(origin)) log.warn(`KV timing from ${origin} failed: ${(e as Error).message}`);
      this.warned.add(origin);
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.length = 0;
  }
}
