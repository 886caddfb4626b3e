// Drives one engine request for the HTTP layer: records metrics per increment, turns a client abort
// into ClientGone, and (for non-streaming responses) collects the increments into one result.
import type { EngineClient, FinishReason, GenerateRequest, RequestOutput, TokenLogprob } from '../engine/protocol.js';
import { PdsError } from '../util/errors.js';
import type { RequestTimer } from './metrics.js';

/** Thrown when the client went away; nothing should be written back. */
export class ClientGone extends Error {
  constructor() {
    super('client disconnected');
    this.name = 'ClientGone';
  }
}

/** Yields the engine's increments until the finished one; aborting `signal` aborts the engine request. */
export async function* runEngine(
  engine: EngineClient, req: GenerateRequest, signal: AbortSignal, timer: RequestTimer,
): AsyncGenerator<RequestOutput> {
  let finished = false;
  try {
    for await (const out of engine.generate(req, signal)) {
      if (signal.aborted) throw new ClientGone();
      timer.output(out.promptTokenIds.length, out.newTokenIds.length);
      if (out.finished) {
        finished = true;
        timer.finish(out.finishReason ?? 'stop');
      }
      yield out;
      if (finished) return;
    }
    throw new PdsError('PDS_ERR_INTERNAL', `engine ended request ${req.requestId} without a final output`);
  } catch (e) {
    if (signal.aborted) throw new ClientGone();
    throw e;
  } finally {
    if (!finished && signal.aborted) timer.finish('abort'); // engine errors are not counted as finished requests
  }
}

export interface Collected {
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprob[];
  finishReason: FinishReason;
  stopReason: number | string | null;
  promptTokenIds: number[];
  numCachedTokens: number;
  kvTransferParams: Record<string, unknown> | null;
}

export async function collect(outputs: AsyncIterable<RequestOutput>): Promise<Collected> {
  const c: Collected = {
    text: '', tokenIds: [], logprobs: [], finishReason: 'abort', stopReason: null, promptTokenIds: [],
    numCachedTokens: 0, kvTransferParams: null,
  };
  for await (const out of outputs) {
    c.text += out.newText;
    c.tokenIds.push(...out.newTokenIds);
    if (out.newLogprobs) c.logprobs.push(...out.newLogprobs);
    c.promptTokenIds = out.promptTokenIds;
    c.numCachedTokens = out.numCachedTokens;
    if (out.finished) {
      c.finishReason = out.finishReason ?? 'stop';
      c.stopReason = out.stopReason ?? null;
      c.kvTransferParams = out.kvTransferParams ?? null;
    }
  }
  return c;
}
