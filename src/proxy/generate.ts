// POST /v1/completions and /v1/chat/completions. Writes the raw response itself (route hijacked).
// 1. Body must be a JSON object, not too deep (else 400; intake.ts); client kv_transfer_params and
//    decode_limits dropped; the client's Authorization is never forwarded; beyond --max-inflight: 429. One X-Request-Id (the
//    client's, or a new UUID) for both legs and the response.
// 2. Prefill leg (only when prefillers exist and the prompt is not below --local-prefill-below):
//    prefillBody() to a prefiller, round robin. 2xx: keep its kv_transfer_params. 4xx: relayed to the
//    client as is, no decode. Unreachable / 5xx / frozen (heartbeat) / all busy: the decoder prefills
//    locally (fallback). Timeout: 504. Retry rules (at most one per request): legs.ts.
// 3. Decode leg: the original bytes (or the body plus the prefiller's kv_transfer_params) to a
//    decoder, round robin; its status and body relayed chunk by chunk. None reachable: 503.
// A client disconnect at any point aborts the leg in flight (its engine sees the socket close).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { openAiErrorBody } from '../util/errors.js';
import { getLogger } from '../util/logger.js';
import { runDecode, runPrefill, isTimeout, type LegContext } from './legs.js';
import { decodeBody, prefillBody, type JsonObject } from './prefill-body.js';
import { relayResponse } from './relay.js';
import { parseClientBody, stripPeerFields, upstreamHeadersFor } from './intake.js';
import { isShortPrompt } from './conditional.js';
import type { ProxyState } from './state.js';
import type { ErrorKind } from './metrics.js';

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
  const fail = (kind: ErrorKind, status: number, message: string, requestId?: string) => {
    st.metrics.errors.inc({ kind });
    sendJson(out, status, openAiErrorBody(status, message), requestId);
  };
  const intake = parseClientBody(rawBody);
  if (typeof intake === 'string') return fail('bad_request', 400, intake);
  const { body: parsed, stripped } = stripPeerFields(intake);
  if (st.config.maxInflight > 0 && st.inflight >= st.config.maxInflight) {
    return fail('overloaded', 429, `proxy is at its limit of ${st.config.maxInflight} requests in flight; retry later`);
  }
  const clientId = req.headers['x-request-id'];
  const requestId = typeof clientId === 'string' && clientId.length > 0 && clientId.length <= 256 ? clientId : randomUUID();
  const clientAbort = new AbortController();
  const onClose = () => {
    if (!out.writableFinished) clientAbort.abort(new Error('client disconnected'));
  };
  out.on('close', onClose);
  st.inflight++;
  st.aborters.add(clientAbort);
  st.metrics.inflight.inc();
  try {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': requestId };
    const headersFor = upstreamHeadersFor(st.config, path, headers);
    const ctx: LegContext = { path, requestId, headers, headersFor, clientSignal: clientAbort.signal, metrics: st.metrics, retry: { left: 1 } };

    let kvTransferParams: unknown;
    let mode: 'disagg' | 'decode_only' = 'decode_only';
    const short = st.prefillers.size > 0 && isShortPrompt(parsed, st.config.localPrefillBelow);
    if (short) st.metrics.fallbacks.inc({ reason: 'short_prompt' });
    if (st.prefillers.size > 0 && !short) {
      const p = await runPrefill(st.prefillers, JSON.stringify(prefillBody(parsed)), ctx, {
        timeoutMs: st.config.prefillTimeoutMs,
        skipUnhealthy: st.config.healthIntervalMs > 0,
        maxInflight: st.config.prefillMaxInflight,
      });
      switch (p.kind) {
        case 'ok':
          mode = 'disagg';
          kvTransferParams = p.kvTransferParams;
          st.metrics.prefillSeconds.observe({ endpoint }, p.ms / 1000);
          st.stats.addPrefill(p.ms);
          break;
        case 'reject':
          st.metrics.errors.inc({ kind: 'upstream_4xx' });
          out.writeHead(p.status, { 'content-type': p.contentType, 'content-length': p.body.length, 'x-request-id': requestId });
          out.end(p.body);
          return;
        case 'fallback':
          st.metrics.fallbacks.inc({ reason: p.reason });
          if (p.reason !== 'busy') log.warn(`no prefiller could take request ${requestId} (${p.reason}); the decoder prefills it locally`);
          break;
        case 'failed':
          return fail('upstream_error', 502, `${p.message}; not retried (this request already had its one retry)`, requestId);
        case 'timeout':
          return fail('timeout', 504, `prefill on ${p.upstream.origin} took longer than ${st.config.prefillTimeoutMs / 1000} s`, requestId);
        case 'aborted':
          st.metrics.errors.inc({ kind: 'client_abort' });
          return;
      }
    }

    st.metrics.requests.inc({ endpoint, mode });
    const body = kvTransferParams === undefined && !stripped ? (rawBody as Buffer).toString('utf8') : JSON.stringify(decodeBody(parsed, kvTransferParams));
    const tDecode = performance.now();
    const d = await runDecode(st.decoders, body, ctx, st.config.decodeTimeoutMs);
    switch (d.kind) {
      case 'unavailable':
        return fail('no_decoder', 503, 'no decode instance is reachable', requestId);
      case 'timeout':
        return fail('timeout', 504, `decode on ${d.upstream.origin} sent nothing for ${st.config.decodeTimeoutMs / 1000} s`, requestId);
      case 'error':
        return fail('upstream_error', 502, `decode on ${d.upstream.origin} failed: ${d.message}`, requestId);
      case 'aborted':
        st.metrics.errors.inc({ kind: 'client_abort' });
        return;
      case 'ok':
        break;
    }
    if (d.res.statusCode >= 400 && d.res.statusCode < 500) st.metrics.errors.inc({ kind: 'upstream_4xx' });
    const r = await relayResponse(d.res, out, requestId);
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
    fail('upstream_error', 500, `proxy error: ${(e as Error).message}`, requestId);
  } finally {
    st.stats.addRequest();
    out.off('close', onClose);
    st.aborters.delete(clientAbort);
    st.inflight--;
    st.metrics.inflight.dec();
  }
}
