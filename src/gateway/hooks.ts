// What a gateway's owner (the router) can plug into the generate path; the proxy plugs in nothing.
// - prepare(): before any leg: narrows the pools (model), gives the policies their RouteRequest
//   (tokens for prefix-aware ones); a {status, message} answer ends the request with that error;
// - onStart()/onDone(): one RequestRecord per admitted request, filled as legs run (stats, dashboard).
import type { IncomingMessage } from 'node:http';
import type { JsonObject } from './prefill-body.js';
import type { RouteRequest } from './policies/policy.js';
import type { Upstream } from './upstream.js';
import type { ErrorCode } from '../util/errors.js';

// skipPrefill: no prefill leg (the reason, counted as a fallback). decoders: the decode pool's order,
// chosen before any leg (decode-first routing), used by the decode leg in place of a second policy call;
// release(): called (idempotent) when the decode leg starts or the request ends, whichever is first.
export interface Routed {
  route: RouteRequest;
  allow?: (u: Upstream) => boolean;
  skipPrefill?: string;
  decoders?: Upstream[];
  release?: () => void;
}
export type Prepared = Routed | { error: ErrorCode; message: string };

/** Times in ms since the request arrived (performance.now() based); null = did not happen. */
export interface RequestRecord {
  requestId: string;
  path: string;
  arrivedAt: number; // Date.now() at arrival (before any admission queue)
  admittedMs: number; // out of the admission queue (0 without one)
  prefillOrigin: string | null;
  prefillStartMs: number | null;
  prefillEndMs: number | null;
  decodeOrigin: string | null;
  decodeStartMs: number | null;
  firstByteMs: number | null;
  lastByteMs: number | null;
  chunks: number; // body chunks relayed (SSE: about one per token)
  status: number | null; // HTTP status sent to the client
  outcome: 'running' | 'ok' | 'error' | 'aborted';
  /** the decode leg's KV_TIMING_HEADER id (signed legs only: the gateway holds the internal secret); null = none */
  timingId: string | null;
  /** the decoder's KV load, ms relative to decodeStartMs (filled later by the router's poll; null = not known) */
  kv: { lookupStartMs: number; loadStartMs: number | null; loadEndMs: number | null; loadMs: number; tokens: number; bytes: number } | null;
}

/** Header of a signed decode leg: the id the decoder keeps that request's KV load timing under (server/kv-timing.ts). */
export const KV_TIMING_HEADER = 'x-pdserve-timing-id';

export interface GatewayHooks {
  prepare?(req: IncomingMessage, body: JsonObject, requestId: string): Promise<Prepared> | Prepared;
  onStart?(rec: RequestRecord): void;
  onDone?(rec: RequestRecord): void;
}

export function newRecord(requestId: string, path: string, admittedMs = 0): RequestRecord {
  return {
    requestId, path, arrivedAt: Date.now() - admittedMs, admittedMs,
    prefillOrigin: null, prefillStartMs: null, prefillEndMs: null,
    decodeOrigin: null, decodeStartMs: null, firstByteMs: null, lastByteMs: null,
    chunks: 0, status: null, outcome: 'running', timingId: null, kv: null,
  };
}
