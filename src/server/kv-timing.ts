// The decoder's per-request KV load timing, for the router's timeline.
// Channel choice: an internal endpoint the router polls after it relayed a response, not a field in
// the response. Response headers go out before a streamed request's KV has loaded, and a trailing field
// would have to be cut from the relayed bytes; polling leaves the client's bytes untouched.
// Contracts:
// - a request is recorded only when it carries a valid internal signature (isPeerRequest) and the
//   TIMING_HEADER id (1-64 of [A-Za-z0-9_-], the router's random per-leg id): a client can neither
//   plant an entry nor choose the key another request's timing is kept under;
// - POST /v1/kv/timing {ids: [...]} (internal: signed requests only, edge-auth.ts), at most MAX_IDS ids,
//   answers {timings: {id: {lookup_start_ms, load_start_ms, load_end_ms, load_ms, tokens, bytes}}}
//   for the ids it holds and forgets them (read once);
// - memory is bounded: at most MAX_ENTRIES entries, oldest dropped first, each kept at most TTL_MS.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { KvLoadTiming } from '../engine/protocol.js';
import { isPeerRequest } from './edge-auth.js';
import { KV_TIMING_HEADER } from '../gateway/hooks.js';
import { PdsError } from '../util/errors.js';

export const TIMING_HEADER = KV_TIMING_HEADER;
export const TIMING_PATH = '/v1/kv/timing';
const MAX_ENTRIES = 4096;
const MAX_IDS = 256;
const TTL_MS = 120_000;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

export interface KvTimingJson {
  lookup_start_ms: number;
  load_start_ms: number | null;
  load_end_ms: number | null;
  load_ms: number;
  tokens: number;
  bytes: number;
}

/** The timing id of a signed request that asked for one; null otherwise. */
export function timingIdOf(req: FastifyRequest): string | null {
  const h = req.headers[TIMING_HEADER];
  return typeof h === 'string' && ID_RE.test(h) && isPeerRequest(req) ? h : null;
}

const ms = (s: number | null) => (s === null ? null : Math.round(s * 1e6) / 1e3);

export class KvTimingStore {
  private readonly map = new Map<string, { at: number; t: KvTimingJson }>();

  constructor(private readonly maxEntries = MAX_ENTRIES, private readonly ttlMs = TTL_MS) {}

  get size(): number {
    return this.map.size;
  }

  /** Records one engine request's timing under `id`; several (a prompt list) merge: earliest start, latest end, summed tokens. */
  put(id: string, k: KvLoadTiming, now = Date.now()): void {
    const t: KvTimingJson = { lookup_start_ms: ms(k.lookupStartS)!, load_start_ms: ms(k.loadStartS), load_end_ms: ms(k.loadEndS), load_ms: ms(k.loadS)!, tokens: k.tokens, bytes: k.bytes };
    const old = this.map.get(id)?.t;
    if (old) {
      const min = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));
      const max = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));
      t.lookup_start_ms = Math.min(old.lookup_start_ms, t.lookup_start_ms);
      t.load_start_ms = min(old.load_start_ms, t.load_start_ms);
      t.load_end_ms = max(old.load_end_ms, t.load_end_ms);
      t.load_ms = t.load_start_ms !== null && t.load_end_ms !== null ? Math.round((t.load_end_ms - t.load_start_ms) * 1e3) / 1e3 : 0;
      t.tokens += old.tokens;
      t.bytes += old.bytes;
      this.map.delete(id);
    }
    this.map.set(id, { at: now, t });
    this.prune(now);
  }

  /** The timings held for `ids`, forgotten once read. */
  take(ids: readonly string[], now = Date.now()): Record<string, KvTimingJson> {
    this.prune(now);
    const out: Record<string, KvTimingJson> = {};
    for (const id of ids) {
      const e = this.map.get(id);
      if (!e) continue;
      out[id] = e.t;
      this.map.delete(id);
    }
    return out;
  }

  private prune(now: number): void {
    for (const [id, e] of this.map) {
      if (this.map.size <= this.maxEntries && now - e.at <= this.ttlMs) break; // insertion order = age order
      this.map.delete(id);
    }
  }
}

const TakeBody = z.object({ ids: z.array(z.string().regex(ID_RE)).max(MAX_IDS) }).strict();

export function registerKvTimingRoute(app: FastifyInstance, store: KvTimingStore): void {
  app.post(TIMING_PATH, async (req, reply) => {
    if (!isPeerRequest(req)) throw new PdsError('PDS_ERR_UNAUTHORIZED', 'this endpoint needs an internal signature');
    const r = TakeBody.safeParse(req.body);
    if (!r.success) throw new PdsError('PDS_ERR_BAD_REQUEST', `body must be {ids: [up to ${MAX_IDS} timing ids]}`);
    return reply.header('cache-control', 'no-store').send({ timings: store.take(r.data.ids) });
  });
}
