// --kv-mode push: both legs at once (SGLang's shape, NixlPushConnector's flow). The prefill leg goes out
// first with kv_transfer_params {do_remote_decode: true, kv_mode: 'push', push_id} and is not awaited; the
// moment a prefiller takes it, the decode leg gets {do_remote_prefill: true, kv_mode: 'push', push_id,
// remote_host, remote_port (that prefiller's API server), remote_transport: 'tcp'}: the decoder allocates,
// tells the prefiller where (POST /v1/kv/push-target) and waits for its writes. The prefill leg has no
// retry on another prefiller (the decoder already names this one); when it fails, the decoder's wait ends
// on its own (heartbeat refused or timeout) and it computes the prompt itself (or answers kv_load_failed).
import { randomUUID } from 'node:crypto';
import { runPrefill, type LegContext, type PrefillOutcome, type PrefillPolicy } from './legs.js';
import { prefillBody, type JsonObject } from './prefill-body.js';
import type { UpstreamSet } from './upstream-set.js';
import type { Upstream } from './upstream.js';

export interface PushStart {
  /** the decode leg's kv_transfer_params; null = no prefiller took the leg (decode-only) */
  decodeParams: JsonObject | null;
  prefiller: Upstream | null;
  /** the prefill leg's outcome (never rejects) */
  prefill: Promise<PrefillOutcome>;
  /** aborts the prefill leg (the decode leg found no decoder) */
  cancel(): void;
}

export function startPushPrefill(set: UpstreamSet, body: JsonObject, path: string, ctx: LegContext, policy: PrefillPolicy): PushStart {
  const pushId = randomUUID();
  const pb = prefillBody(body, path);
  pb.kv_transfer_params = { do_remote_decode: true, do_remote_prefill: false, kv_mode: 'push', push_id: pushId };
  const own = new AbortController();
  let prefiller: Upstream | null = null;
  const pctx: LegContext = {
    ...ctx,
    clientSignal: AbortSignal.any([ctx.clientSignal, own.signal]),
    retry: { left: 0 },
    onPrefillAttempt: (u) => {
      prefiller ??= u;
      ctx.onPrefillAttempt?.(u);
    },
  };
  // runPrefill picks its upstream and calls onPrefillAttempt before its first await
  const prefill = runPrefill(set, JSON.stringify(pb), pctx, policy);
  const p = prefiller as Upstream | null;
  let decodeParams: JsonObject | null = null;
  if (p) {
    const u = new URL(p.origin);
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    decodeParams = { do_remote_prefill: true, do_remote_decode: false, kv_mode: 'push', push_id: pushId, remote_host: host, remote_port: port, remote_transport: 'tcp' };
  }
  return { decodeParams, prefiller: p, prefill, cancel: () => own.abort(new Error('the decode leg failed')) };
}
