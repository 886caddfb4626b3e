// Prefix keys of a request, as the engines' prefix cache names blocks: the chained hash
// (src/util/chain-hash.ts, hex; engine: src/engine/block-hash.ts) of each full block of prompt tokens.
// Without token ids (a text prompt the router did not tokenize) the UTF-16 code units of the prompt
// text stand in for tokens, blocks of 4x the size: same prefix = same keys, but not the engines' keys.
import { chainHash } from '../../util/chain-hash.js';
import type { RouteRequest } from './policy.js';

export const DEFAULT_BLOCK_SIZE = 16;
const MAX_BLOCKS = 4096; // bounds the work per request (64k tokens at block size 16)

export function chainKeys(tokens: ArrayLike<number>, blockSize: number): string[] {
  const out: string[] = [];
  let parent: Buffer | null = null;
  for (let s = 0; s + blockSize <= tokens.length && out.length < MAX_BLOCKS; s += blockSize) {
    parent = chainHash(parent, Array.prototype.slice.call(tokens, s, s + blockSize) as number[]);
    out.push(parent.toString('hex'));
  }
  return out;
}

function promptText(req: RouteRequest): string {
  const p = req.body.prompt;
  if (typeof p === 'string') return p;
  if (Array.isArray(p) && typeof p[0] === 'string') return p[0];
  const msgs = req.body.messages;
  if (Array.isArray(msgs)) {
    return msgs
      .map((m) => {
        const c = (m as { role?: unknown; content?: unknown })?.content;
        const text = typeof c === 'string' ? c : Array.isArray(c) ? c.map((x) => (x as { text?: string })?.text ?? '').join('') : '';
        return `${String((m as { role?: unknown })?.role ?? '')}\n${text}\n`;
      })
      .join('');
  }
  return '';
}

/** Token ids of the request when known: the router's tokenization, or a token-id prompt. */
export function tokensOf(req: RouteRequest): readonly number[] | null {
  if (req.tokens) return req.tokens;
  const p = req.body.prompt;
  if (Array.isArray(p) && p.length && p.every((x) => Number.isInteger(x) && (x as number) >= 0)) return p as number[];
  return null;
}

/** The request's block keys (see the header). */
export function requestKeys(req: RouteRequest, blockSize = DEFAULT_BLOCK_SIZE): string[] {
  const t = tokensOf(req);
  if (t) return chainKeys(t, blockSize);
  const text = promptText(req).slice(0, MAX_BLOCKS * blockSize * 4);
  const units = Array.from({ length: text.length }, (_, i) => text.charCodeAt(i));
  return chainKeys(units, blockSize * 4);
}
