// A prefill leg checked with the decode leg's limits. The proxy sends the prefill leg with max_tokens 1;
// it adds `decode_limits: {max_tokens, min_tokens, max_model_len}` (the client's values and the decoders'
// max_model_len) so the prefiller refuses, with the decoder's own 400, a request the decoder would refuse:
// such a request then costs no prefill and no pool space. The field can only make an engine refuse more,
// so it needs no signature.
import { resolveMaxTokens } from './sampling.js';
import { badRequest } from './http-errors.js';

export interface DecodeLimits {
  max_tokens?: number | null | undefined;
  min_tokens?: number | null | undefined;
  max_model_len?: number | null | undefined;
}

export function checkDecodeLimits(
  d: DecodeLimits, defaultMax: number | null, promptLen: number, maxModelLen: number, promptParam: 'prompt' | 'messages',
): void {
  const len = Math.min(maxModelLen, d.max_model_len ?? maxModelLen);
  if (d.max_tokens != null && d.max_tokens < 1) throw badRequest(`max_tokens must be at least 1, got ${d.max_tokens}.`, 'max_tokens');
  const max = resolveMaxTokens(d.max_tokens ?? null, defaultMax, promptLen, len, 'max_tokens', promptParam);
  const min = d.min_tokens ?? 0;
  if (min < 0) throw badRequest(`min_tokens must be greater than or equal to 0, got ${min}.`, 'min_tokens');
  if (min > max) throw badRequest(`min_tokens must be less than or equal to max_tokens=${max}, got ${min}.`, 'min_tokens');
}
