// Consumer side: loads tokens [start, end) of a request from the chunks a lookup found, into its blocks.
// Each chunk is read from its tier (a pinned view of the shared pool in shm mode, bytes over TCP
// otherwise) and scattered by the engine; a chunk only partly needed is repacked first (sliceTokens).
// Bounded: past `timeoutMs` the load is cancelled, but it reports only after the scatter in flight has
// returned, so no write can land in blocks the engine has already given back.
import type { KvCacheAccess } from '../../engine/connector/base.js';
import type { ChunkRef } from '../chunk-hash.js';
import type { KvTier } from '../tiers/tier.js';
import { blocksFor, sliceTokens } from './layout.js';

export interface LoadJob {
  chunks: readonly ChunkRef[]; // the leading chunks found by the lookup
  tierOf: readonly KvTier[]; // tier holding chunks[i]
  start: number; // first token to load (rounded down to a block boundary here)
  end: number;
  blockIds: readonly number[]; // all blocks of the request
  numLayers: number;
}

export interface LoadOutcome {
  loadedTokens: number; // tokens loaded from the (block-aligned) start
  bytes: number;
  /** Token from which the KV is missing (= end when all loaded). */
  loadedTo: number;
  error: Error | null;
}

export async function loadChunks(kv: KvCacheAccess, job: LoadJob, timeoutMs: number, cancelled: { value: boolean }): Promise<LoadOutcome> {
  const bs = kv.blockSize;
  const a0 = Math.floor(job.start / bs) * bs;
  const out: LoadOutcome = { loadedTokens: 0, bytes: 0, loadedTo: a0, error: null };
  const run = async () => {
    const idx: number[] = [];
    job.chunks.forEach((c, i) => c.end > a0 && c.start < job.end && idx.push(i));
    // The next chunk's lookup (a pool round trip) overlaps this chunk's scatter.
    const fetch = (k: number) => (k < idx.length ? job.tierOf[idx[k]!]!.get(job.chunks[idx[k]!]!.key) : Promise.resolve(null));
    let next = fetch(0);
    try {
      for (let k = 0; k < idx.length; k++) {
        const c = job.chunks[idx[k]!]!;
        const h = await next;
        next = cancelled.value ? Promise.resolve(null) : fetch(k + 1);
        if (!h) throw new Error(`chunk [${c.start}, ${c.end}) is gone from ${job.tierOf[idx[k]!]!.name}`);
        try {
          if (cancelled.value) throw new Error('load cancelled');
          const a = Math.max(out.loadedTo, c.start);
          const b = Math.min(job.end, c.end);
          const T = c.end - c.start;
          if (h.bytes.byteLength !== T * kv.bytesPerToken)
            throw new Error(`chunk [${c.start}, ${c.end}) has ${h.bytes.byteLength} bytes, expected ${T * kv.bytesPerToken} (model/KV layout mismatch)`);
          const src = sliceTokens(h.bytes, job.numLayers, T, a - c.start, b - c.start);
          await kv.scatter(blocksFor(job.blockIds, bs, a, b), b - a, src);
          if (!h.valid()) throw new Error(`lost the pin on chunk [${c.start}, ${c.end}) while reading it`);
          out.loadedTo = b;
          out.loadedTokens += b - a;
          out.bytes += (b - a) * kv.bytesPerToken;
        } finally {
          h.release();
        }
      }
    } finally {
      void next.then((h) => h?.release(), () => {});
    }
    if (out.loadedTo < job.end) throw new Error(`only tokens up to ${out.loadedTo} of ${job.end} were found`);
  };
  const running = run();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`load exceeded blocking_timeout_secs (${timeoutMs / 1000} s)`)), timeoutMs);
  });
  try {
    await Promise.race([running, timeout]);
  } catch (e) {
    out.error = e as Error;
    cancelled.value = true;
    await running.catch(() => {}); // let the scatter in flight finish before the blocks are reported
  } finally {
    clearTimeout(timer);
  }
  return out;
}
