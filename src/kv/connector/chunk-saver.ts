// Producer side: stores computed chunks of one request into every write tier.
// Per call: chunks already present are skipped (lookup first, and a reserve that answers "exists");
// for the rest, all tiers reserve space (pipelined), the engine gathers each chunk ONCE straight into the
// first reservation's view (a view of the shared pool in shm mode: no extra copy), other tiers get a
// memcpy of it, then everything commits. Failures are logged and dropped: a save never throws.
import type { KvCacheAccess } from '../../engine/connector/base.js';
import type { ChunkRef } from '../chunk-hash.js';
import type { KvTier, Reservation } from '../tiers/tier.js';
import type { Logger } from '../../util/logger.js';
import { blocksFor, storedLine } from './layout.js';

export interface SaveResult {
  storedChunks: number;
  skippedChunks: number;
  failedChunks: number;
  storedTokens: number;
  bytes: number;
}

export async function saveChunks(
  kv: KvCacheAccess,
  tiers: readonly KvTier[],
  chunks: readonly ChunkRef[],
  blockIds: readonly number[],
  totalTokens: number,
  log: Logger,
): Promise<SaveResult> {
  const r: SaveResult = { storedChunks: 0, skippedChunks: 0, failedChunks: 0, storedTokens: 0, bytes: 0 };
  if (!chunks.length || !tiers.length) return r;
  const t0 = performance.now();
  const keys = chunks.map((c) => c.key);
  const reserveErrors = new Map<string, { n: number; msg: string }>(); // one warning per tier, not per chunk
  const present = await Promise.all(tiers.map((t) => t.lookupPrefix(keys).catch(() => 0)));
  const reservations: Array<Array<Reservation | null | 'error'>> = await Promise.all(
    chunks.map((c, i) =>
      Promise.all(
        tiers.map((t, ti) =>
          i < present[ti]! ? null : t.reserve(c.key, (c.end - c.start) * kv.bytesPerToken).catch((e: Error) => {
            reserveErrors.set(t.name, { n: (reserveErrors.get(t.name)?.n ?? 0) + 1, msg: e.message });
            return 'error' as const;
          }),
        ),
      ),
    ),
  );
  for (const [tier, e] of reserveErrors) log.warn(`${e.n} of ${chunks.length} chunks not saved to ${tier}: ${e.msg}`);
  let offloadMs = 0;
  const commits: Array<Promise<void>> = [];
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    const rs = reservations[i]!.filter((x): x is Reservation => x !== null && x !== 'error');
    if (!rs.length) {
      if (reservations[i]!.includes('error')) r.failedChunks++;
      else r.skippedChunks++;
      continue;
    }
    try {
      const g0 = performance.now();
      await kv.gather(blocksFor(blockIds, kv.blockSize, c.start, c.end), c.end - c.start, rs[0]!.view);
      offloadMs += performance.now() - g0;
      for (let k = 1; k < rs.length; k++) rs[k]!.view.set(rs[0]!.view);
    } catch (e) {
      log.warn(`save of tokens [${c.start}, ${c.end}) failed: ${(e as Error).message}`);
      r.failedChunks++;
      for (const x of rs) commits.push(x.abort().catch(() => {}));
      continue;
    }
    let ok = true;
    for (const x of rs)
      commits.push(
        x.commit().catch((e: Error) => {
          if (ok) r.failedChunks++;
          ok = false;
          log.warn(`commit of tokens [${c.start}, ${c.end}): ${e.message}`);
        }),
      );
    r.storedChunks++;
    r.storedTokens += c.end - c.start;
    r.bytes += (c.end - c.start) * kv.bytesPerToken;
  }
  await Promise.all(commits);
  const ms = performance.now() - t0;
  if (r.storedTokens > 0) log.info(storedLine(r.storedTokens, totalTokens, r.bytes, ms, offloadMs, ms - offloadMs));
  return r;
}
