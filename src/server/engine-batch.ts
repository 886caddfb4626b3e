// Runs one engine request per prompt concurrently under one HTTP request. The first failure aborts the
// others; all are awaited (so their blocks are freed and ids released) before the outcome is reported.
import type { GenerateRequest, KvLoadTiming, RequestOutput } from '../engine/protocol.js';
import { ClientGone, runEngine } from './engine-run.js';
import type { ServerContext } from './server-context.js';

export async function runBatch<T>(
  ctx: ServerContext, reqs: GenerateRequest[], disconnect: AbortSignal,
  each: (outputs: AsyncGenerator<RequestOutput>, index: number) => Promise<T>,
  timingId: string | null = null, // kv-timing.ts: the KV load timing of these requests is kept under it
): Promise<T[]> {
  const onKvLoad = timingId ? (k: KvLoadTiming) => ctx.kvTiming.put(timingId, k) : undefined;
  const local = new AbortController();
  const signal = AbortSignal.any([disconnect, local.signal]);
  let firstError: unknown = null;
  const settled = await Promise.allSettled(reqs.map(async (req, i) => {
    try {
      return await each(runEngine(ctx.engine, req, signal, ctx.metrics.startRequest(onKvLoad)), i);
    } catch (e) {
      if (firstError === null && !(e instanceof ClientGone && !disconnect.aborted)) firstError = e;
      local.abort();
      throw e;
    } finally {
      req.constraint?.dispose(); // idempotent; covers requests the engine never took
      for (const c of req.forkConstraints ?? []) c.dispose();
      ctx.ids.release(req.requestId);
    }
  }));
  if (disconnect.aborted) throw new ClientGone();
  if (firstError !== null) throw firstError;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}
