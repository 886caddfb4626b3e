// Conditional disaggregation: which requests skip the prefill leg and are prefilled by the decoder.
// The proxy does not tokenize, so prompt size is estimated: token-id prompts count exactly,
// text counts as characters / 4 (about one token per 4 characters of English under BPE).
import type { JsonObject } from './prefill-body.js';

function textSize(s: string): number {
  return Math.ceil(s.length / 4);
}

/** Estimated prompt tokens of a completions or chat body (0 when it has neither prompt nor messages). */
export function promptSize(body: JsonObject): number {
  const p = body.prompt;
  if (typeof p === 'string') return textSize(p);
  if (Array.isArray(p)) {
    let n = 0;
    for (const x of p) {
      if (typeof x === 'number') n += 1;
      else if (typeof x === 'string') n += textSize(x);
      else if (Array.isArray(x)) n += x.length;
    }
    return n;
  }
  const msgs = body.messages;
  if (Array.isArray(msgs)) {
    let n = 0;
    for (const m of msgs) {
      const c = (m as { content?: unknown })?.content;
      if (typeof c === 'string') n += textSize(c);
      else if (Array.isArray(c)) {
        for (const part of c) {
          const t = (part as { text?: unknown })?.text;
          if (typeof t === 'string') n += textSize(t);
        }
      }
    }
    return n;
  }
  return 0;
}

/** True when the prompt is too short for a KV transfer to pay off (threshold 0 = never). */
export function isShortPrompt(body: JsonObject, threshold: number): boolean {
  return threshold > 0 && promptSize(body) < threshold;
}
