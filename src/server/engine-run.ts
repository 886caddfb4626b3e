// Drives one engine request for the HTTP layer: records metrics per increment, turns a client abort
// into ClientGone, and (for non-streaming responses) collects the increments into one result.
import type { EngineClient, FinishReason, GenerateRequest, KvTransferParams, PromptLogprob, RequestOutput, TokenLogprob } from '../engine/protocol.js';
import { PdsError } from '../util/errors.js';
import type { RequestTimer } from './metrics.js';

/** Thrown when the client went away; nothing should be written back. */
export class ClientGone extends Error {
  constructor() {
    super('client disconnected');
    this.name = 'ClientGone';
  }
}

/**
 * Yields the engine's increments until every sequence of the request (req.n, default 1) has finished;
 * aborting `signal` aborts the engine request.
 */
export async function* runEngine(
  engine: EngineClient, req: GenerateRequest, signal: AbortSignal, timer: RequestTimer,
): AsyncGenerator<RequestOutput> {
  let finished = false;
  const n = req.n ?? 1;
  const ended = new Set<number>();
  try {
    for await (const out of engine.generate(req, signal)) {
      if (signal.aborted) throw new ClientGone();
      timer.output(out.promptTokenIds.length, out.newTokenIds.length, out.queueTimeS, out.kvLoad); // the prompt counts once per request
      if (out.finished) ended.add(out.index ?? 0);
      if (ended.size >= n) {
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
  kvTransferParams: KvTransferParams | null;
  /** the request's prompt logprobs (shared by its n choices), when asked for */
  promptLogprobs: Array<PromptLogprob | null> | null;
}

export async function collect(outputs: AsyncIterable<RequestOutput>): Promise<Collected> {
  return (await collectChoices(outputs, 1))[0]!;
}

/** Collects the n sequences of one request (by RequestOutput.index) into n results. */
export async function collectChoices(outputs: AsyncIterable<RequestOutput>, n: number): Promise<Collected[]> {
  const all: Collected[] = Array.from({ length: n }, () => ({
    text: '', tokenIds: [], logprobs: [], finishReason: 'abort', stopReason: null, promptTokenIds: [],
    numCachedTokens: 0, kvTransferParams: null, promptLogprobs: null,
  }));
  for await (const out of outputs) {
    const c = all[out.index ?? 0];
    if (!c) throw new PdsError('PDS_ERR_INTERNAL', `engine output for choice ${out.index} of ${n}`);
    if (out.promptLogprobs) for (const x of all) x.promptLogprobs = out.promptLogprobs;
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
  return all;
}
