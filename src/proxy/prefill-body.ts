// The prefill leg's request body, derived from the client's (never mutated).
export type JsonObject = Record<string, unknown>;

/**
 * Copy of `body` for the prefill leg: max_tokens 1 (and max_completion_tokens 1 when present),
 * stream false, no stream_options / min_tokens, and NIXL-style
 * kv_transfer_params {do_remote_decode: true, do_remote_prefill: false}, and decode_limits {max_tokens,
 * min_tokens} (the client's) so the prefiller validates as the decoder will.
 */
export function prefillBody(body: JsonObject): JsonObject {
  const out: JsonObject = { ...body, max_tokens: 1, stream: false };
  if ('max_completion_tokens' in body) out.max_completion_tokens = 1;
  delete out.stream_options;
  delete out.min_tokens;
  out.kv_transfer_params = { do_remote_decode: true, do_remote_prefill: false };
  // the prefiller refuses what the decoder would (server/decode-limits.ts): no prefill for a doomed request
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  out.decode_limits = {
    ...(typeof maxTokens === 'number' ? { max_tokens: maxTokens } : {}),
    ...(typeof body.min_tokens === 'number' ? { min_tokens: body.min_tokens } : {}),
  };
  return out;
}

/** The decode leg's body: the original, plus the prefiller's kv_transfer_params when it sent any. */
export function decodeBody(body: JsonObject, kvTransferParams: unknown): JsonObject {
  if (kvTransferParams && typeof kvTransferParams === 'object' && !Array.isArray(kvTransferParams)) {
    return { ...body, kv_transfer_params: kvTransferParams };
  }
  return body;
}
