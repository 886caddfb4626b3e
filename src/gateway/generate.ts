// POST /v1/completions, /v1/chat/completions and /v1/responses. Writes the raw response itself (route hijacked).
// 1. Body must be a JSON object, not too deep (else 400; intake.ts); client kv_transfer_params and
//    decode_limits dropped; the client's Authorization is never forwarded; beyond --max-inflight: 429. One X-Request-Id (the
//    client's, or a new UUID) for both legs and the response.
// 2. Prefill leg (only when prefillers exist and the prompt is not below --local-prefill-below):
//    prefillBody() to a prefiller, round robin. 2xx: keep its kv_transfer_params. 4xx: relayed to the
//    client as is, no decode. Unreachable / 5xx / frozen (heartbeat) / all busy: the decoder prefills
//    locally (fallback). Timeout: 504. Retry rules (at most one per request): legs.ts.
// 3. Decode leg: the original bytes (or the body plus the prefiller's kv_transfer_params) to a
//    decoder, round robin; its status and body relayed chunk by chunk. None reachable: 503.
// With --kv-mode push, 2 and 3 start together (push-legs.ts); a prefill leg that fails before the decoder
// answers cuts the decode leg: a 4xx is relayed, anything else re-sends the decode leg decode-only.
// A client disconnect at any point aborts the leg in flight (its engine sees the socket close).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { httpStatusOf, openAiErrorBody, type ErrorCode } from '../util/errors.js';
import { getLogger } from '../util/logger.js';
import { doneDecoding, runDecode, runPrefill, isTimeout, type LegContext, type PrefillOutcome } from './legs.js';
import { decodeBody, prefillBody, type JsonObject } from './prefill-body.js';
import { relayResponse } from './relay.js';
import { parseClientBody, stripPeerFields, upstreamHeadersFor } from './intake.js';
import { isShortPrompt } from './conditional.js';
import type { ProxyState } from './state.js';
import type { ErrorKind } from './metrics.js';
import { KV_TIMING_HEADER, newRecord, type RequestRecord } from './hooks.js';
import { startPushPrefill, type PushStart } from './push-legs.js';

const log = getLogger('proxy');

export function sendJson(out: ServerResponse, status: number, body: unknown, requestId?: string): void {
  if (out.headersSent || out.destroyed) {
    out.destroy();
    return;
  }
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
  if (requestId) headers['x-request-id'] = requestId;
  out.writeHead(status, headers);
  out.end(text);
}

export async function handleGenerate(st: ProxyState, path: string, req: IncomingMessage, rawBody: unknown, out: ServerResponse): Promise<void> {
  const t0 = performance.now();
  const endpoint = path;
  let rec: RequestRecord | null = null; // only when the owner has hooks
  // the status comes from the shared error codes (src/util/errors.ts); the body's code stays the status (vLLM's)
  const fail = (kind: ErrorKind, code: ErrorCode, message: string, requestId?: string) => {
    const status = httpStatusOf(code);
    st.metrics.errors.inc({ kind });
    if (rec) {
      rec.status = status;
      rec.outcome = 'error';
    }
    sendJson(out, status, openAiErrorBody(status, message), requestId);
  };
  const since = () => performance.now() - t0;
  const intake = parseClientBody(rawBody);
  if (typeof intake === 'string') return fail('bad_request', 'PDS_ERR_BAD_REQUEST', intake);
  const { body: parsed, stripped } = stripPeerFields(intake);
  if (!st.admission && st.config.maxInflight > 0 && st.inflight >= st.config.maxInflight) {
    return fail('overloaded', 'PDS_ERR_OVERLOADED', `proxy is at its limit of ${st.config.maxInflight} requests in flight; retry later`);
  }
  const clientId = req.headers['x-request-id'];
  const requestId = typeof clientId === 'string' && clientId.length > 0 && clientId.length <= 256 ? clientId : randomUUID();
  const clientAbort = new AbortController();
  const onClose = () => {
    if (!out.writableFinished) clientAbort.abort(new Error('client disconnected'));
  };
  out.on('close', onClose);
  if (st.admission && !(await st.admission.acquire(clientAbort.signal))) {
    out.off('close', onClose);
    if (clientAbort.signal.aborted) return;
    const a = st.admission;
    return fail('overloaded', 'PDS_ERR_OVERLOADED', `at the limit of ${a.maxInflight} requests in flight and ${a.maxQueue} queued; retry later`, requestId);
  }
  const hooks = st.hooks;
  let release: (() => void) | undefined; // the prepare hook's reservation of a decoder
  if (hooks) {
    rec = newRecord(requestId, path, since());
    hooks.onStart?.(rec);
  }
  st.inflight++;
  st.aborters.add(clientAbort);
  st.metrics.inflight.inc();
  try {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': requestId };
    const headersFor = upstreamHeadersFor(st.config, path, headers);
    const ctx: LegContext = { path, requestId, headers, headersFor, clientSignal: clientAbort.signal, metrics: st.metrics, retry: { left: 1 } };
    let skipPrefill: string | undefined;
    if (hooks?.prepare) {
      const prep = await hooks.prepare(req, parsed, requestId);
      if ('error' in prep) return fail(prep.error === 'PDS_ERR_OVERLOADED' ? 'overloaded' : 'bad_request', prep.error, prep.message, requestId);
      ctx.route = prep.route;
      ctx.allow = prep.allow;
      skipPrefill = prep.skipPrefill;
      ctx.decodeOrder = prep.decoders;
      release = prep.release;
      if (clientAbort.signal.aborted) return;
    }

    let kvTransferParams: unknown;
    let mode: 'disagg' | 'decode_only' = 'decode_only';
    let push: PushStart | null = null;
    // push: a prefill leg that fails before the decoder answered cuts the decode leg (decodeCut), which is
    // then relayed as the prefiller's 4xx or re-sent decode-only (the decoder would otherwise wait for KV
    // that never comes until its load timeout)
    const decodeCut = new AbortController();
    let pushFailed: PrefillOutcome | null = null;
    let decodeAnswered = false;
    const short = st.prefillers.size > 0 && isShortPrompt(parsed, st.config.localPrefillBelow);
    if (short) st.metrics.fallbacks.inc({ reason: 'short_prompt' });
    else if (skipPrefill && st.prefillers.size > 0) st.metrics.fallbacks.inc({ reason: skipPrefill });
    const prefillPolicy = {
      timeoutMs: st.config.prefillTimeoutMs,
      skipUnhealthy: st.config.healthIntervalMs > 0,
      maxInflight: st.config.prefillMaxInflight,
      retryBackoffMs: st.prefillRetryBackoffMs ?? 0,
    };
    if (st.prefillers.size > 0 && !short && !skipPrefill && st.config.kvMode === 'push') {
      // both legs at once (push-legs.ts)
      if (rec) rec.prefillStartMs = since();
      const ps = startPushPrefill(st.prefillers, parsed, path, ctx, prefillPolicy);
      push = ps;
      if (ps.decodeParams) {
        mode = 'disagg';
        kvTransferParams = ps.decodeParams;
        if (rec) rec.prefillOrigin = ps.prefiller!.origin;
      }
      const r0 = rec;
      void ps.prefill.then((p) => {
        if (!ps.decodeParams) {
          if (p.kind === 'fallback') st.metrics.fallbacks.inc({ reason: p.reason }); // no prefiller took it: decode-only
        } else if (p.kind === 'ok') {
          if (r0) r0.prefillEndMs = since();
          st.metrics.prefillSeconds.observe({ endpoint }, p.ms / 1000);
          st.stats.addPrefill(p.ms);
        } else if (p.kind !== 'aborted' && ps.decodeParams) {
          if (!decodeAnswered) {
            pushFailed = p;
            decodeCut.abort(new Error('the push prefill leg failed'));
          } else log.warn(`push prefill leg of request ${requestId} ended ${p.kind} after the decoder answered`);
        }
      });
    } else if (st.prefillers.size > 0 && !short && !skipPrefill) {
      if (rec) {
        const r0 = rec;
        r0.prefillStartMs = since();
        ctx.onPrefillAttempt = (u) => (r0.prefillOrigin = u.origin);
      }
      const p = await runPrefill(st.prefillers, JSON.stringify(prefillBody(parsed, path)), ctx, prefillPolicy);
      switch (p.kind) {
        case 'ok':
          if (rec) {
            rec.prefillOrigin = p.upstream.origin;
            rec.prefillEndMs = since();
          }
          mode = 'disagg';
          kvTransferParams = p.kvTransferParams;
          st.metrics.prefillSeconds.observe({ endpoint }, p.ms / 1000);
          st.stats.addPrefill(p.ms);
          break;
        case 'reject':
          st.metrics.errors.inc({ kind: 'upstream_4xx' });
          if (rec) {
            rec.prefillOrigin = p.upstream.origin;
            rec.status = p.status;
            rec.outcome = 'error';
          }
          out.writeHead(p.status, { 'content-type': p.contentType, 'content-length': p.body.length, 'x-request-id': requestId });
          out.end(p.body);
          return;
        case 'fallback':
          st.metrics.fallbacks.inc({ reason: p.reason });
          if (p.reason !== 'busy') log.warn(`no prefiller could take request ${requestId} (${p.reason}); the decoder prefills it locally`);
          break;
        case 'failed':
          return fail('upstream_error', 'PDS_ERR_UPSTREAM', `${p.message}; not retried (this request already had its one retry)`, requestId);
        case 'timeout':
          return fail('timeout', 'PDS_ERR_TIMEOUT', `prefill on ${p.upstream.origin} took longer than ${st.config.prefillTimeoutMs / 1000} s`, requestId);
        case 'aborted':
          st.metrics.errors.inc({ kind: 'client_abort' });
          return;
      }
    }

    st.metrics.requests.inc({ endpoint, mode });
    const body = kvTransferParams === undefined && !stripped ? (rawBody as Buffer).toString('utf8') : JSON.stringify(decodeBody(parsed, kvTransferParams));
    const tDecode = performance.now();
    release?.();
    let decodeCtx = ctx;
    if (rec && st.config.internalKey) {
      // signed leg: ask the decoder to keep its KV load timing under a fresh id (the router polls it)
      rec.timingId = randomUUID();
      const h = { ...headers, [KV_TIMING_HEADER]: rec.timingId };
      decodeCtx = { ...ctx, headers: h, headersFor: upstreamHeadersFor(st.config, path, h) };
    }
    if (rec) rec.decodeStartMs = since();
    const dctx: LegContext = push ? { ...decodeCtx, clientSignal: AbortSignal.any([ctx.clientSignal, decodeCut.signal]) } : decodeCtx;
    let d = await runDecode(st.decoders, body, dctx, st.config.decodeTimeoutMs);
    decodeAnswered = true;
    const failed = pushFailed as PrefillOutcome | null;
    if (d.kind === 'aborted' && failed && !clientAbort.signal.aborted) {
      if (failed.kind === 'reject') {
        st.metrics.errors.inc({ kind: 'upstream_4xx' });
        if (rec) rec.status = failed.status;
        out.writeHead(failed.status, { 'content-type': failed.contentType, 'content-length': failed.body.length, 'x-request-id': requestId });
        out.end(failed.body);
        return;
      }
      log.warn(`push prefill leg of request ${requestId} ended ${failed.kind}; the decoder prefills it locally`);
      st.metrics.fallbacks.inc({ reason: failed.kind === 'fallback' ? failed.reason : 'prefill_error' });
      d = await runDecode(st.decoders, JSON.stringify(decodeBody(parsed, undefined)), decodeCtx, st.config.decodeTimeoutMs);
    }
    if (d.kind !== 'ok') push?.cancel();
    switch (d.kind) {
      case 'unavailable':
        return fail('no_decoder', 'PDS_ERR_UNAVAILABLE', 'no decode instance is reachable', requestId);
      case 'timeout':
        return fail('timeout', 'PDS_ERR_TIMEOUT', `decode on ${d.upstream.origin} sent nothing for ${st.config.decodeTimeoutMs / 1000} s`, requestId);
      case 'error':
        return fail('upstream_error', 'PDS_ERR_UPSTREAM', `decode on ${d.upstream.origin} failed: ${d.message}`, requestId);
      case 'aborted':
        st.metrics.errors.inc({ kind: 'client_abort' });
        return;
      case 'ok':
        break;
    }
    if (d.res.statusCode >= 400 && d.res.statusCode < 500) st.metrics.errors.inc({ kind: 'upstream_4xx' });
    if (rec) {
      rec.decodeOrigin = d.upstream.origin;
      rec.status = d.res.statusCode;
    }
    let r;
    try {
      r = await relayResponse(d.res, out, requestId);
    } finally {
      doneDecoding(d.upstream);
    }
    if (rec) {
      rec.firstByteMs = r.firstByteMs === null ? null : r.firstByteMs - t0;
      rec.lastByteMs = r.lastByteMs === null ? null : r.lastByteMs - t0;
      rec.chunks = r.chunks;
      rec.outcome = r.completed ? (d.res.statusCode < 400 ? 'ok' : 'error') : clientAbort.signal.aborted ? 'aborted' : 'error';
    }
    if (r.firstByteMs !== null) {
      const ttft = r.firstByteMs - tDecode;
      st.metrics.decodeTtftSeconds.observe({ endpoint }, ttft / 1000);
      st.stats.addDecodeTtft(ttft);
    }
    if (r.completed) {
      st.metrics.e2eSeconds.observe({ endpoint }, (performance.now() - t0) / 1000);
      return;
    }
    if (clientAbort.signal.aborted) {
      st.metrics.errors.inc({ kind: 'client_abort' });
    } else {
      st.metrics.errors.inc({ kind: isTimeout(r.error) ? 'timeout' : 'upstream_error' });
      log.warn(`decode on ${d.upstream.origin} broke off request ${requestId}: ${String((r.error as Error)?.message ?? r.error)}`);
      d.res.body.destroy();
    }
    out.destroy(); // the client must see a cut stream, not a silently short one
  } catch (e) {
    log.error(`request ${requestId} failed: ${(e as Error).stack ?? e}`);
    fail('upstream_error', 'PDS_ERR_INTERNAL', `proxy error: ${(e as Error).message}`, requestId);
  } finally {
    release?.();
    if (rec) {
      if (rec.outcome === 'running') rec.outcome = clientAbort.signal.aborted ? 'aborted' : 'error';
      hooks?.onDone?.(rec);
    }
    st.stats.addRequest();
    out.off('close', onClose);
    st.aborters.delete(clientAbort);
    st.inflight--;
    st.metrics.inflight.dec();
    st.admission?.release();
  }
}
