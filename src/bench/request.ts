// One streamed OpenAI request -> RequestRecord. Hot path: performance.now() and SseSplitter.push per
// network chunk. The events are interpreted (JSON) later by finalizeRecord: the runner defers that to
// the end of the run so parsing never delays other streams' timestamps. Never throws: failures
// become records with success=false and an error text.
import type { Dispatcher } from 'undici';
import { SseSplitter, interpretEvents } from './sse-events.js';
import type { RequestRecord } from './types.js';

export interface RequestSpec {
  origin: string; // http://host:port
  path: string; // /v1/completions
  /** Pre-serialised JSON body. */
  body: string;
  chat: boolean;
  promptLen: number;
  requestId: string;
  signal?: AbortSignal;
}

/** Raw stream awaiting finalizeRecord: SSE events, their arrival times (ms) and the send time (ms). */
export interface PendingStream {
  events: string[];
  times: number[];
  st: number;
  chars: number;
}

export type TracedRecord = RequestRecord & { events?: string[]; eventTimes?: number[]; pending?: PendingStream };

const apiKey = process.env.OPENAI_API_KEY;
const sixHoursMs = 6 * 3600 * 1000; // vLLM's client timeout

function describe(e: unknown): string {
  const err = e as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } };
  const code = err?.code ?? err?.cause?.code;
  const msg = err?.message || err?.cause?.message || String(e);
  return `${err?.name ?? 'Error'}${code ? ` (${code})` : ''}: ${msg}`;
}

export async function streamRequest(dispatcher: Dispatcher, spec: RequestSpec): Promise<TracedRecord> {
  const rec: TracedRecord = {
    success: false, startTime: 0, ttft: 0, itl: [], latency: 0, outputTokens: 0,
    promptLen: spec.promptLen, generatedText: '', error: '', clientQueueTime: 0,
  };
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': spec.requestId };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const split = new SseSplitter();
  const st = performance.now();
  rec.startTime = st / 1000;
  try {
    const res = await dispatcher.request({
      origin: spec.origin, path: spec.path, method: 'POST', headers, body: spec.body,
      signal: spec.signal, headersTimeout: sixHoursMs, bodyTimeout: sixHoursMs,
    });
    if (res.statusCode !== 200) {
      const text = (await res.body.text()).trim();
      let msg = text;
      try {
        msg = JSON.parse(text)?.error?.message ?? text;
      } catch { /* not JSON */ }
      rec.error = `HTTP ${res.statusCode}${msg ? `: ${msg.slice(0, 300)}` : ''}`;
      return rec;
    }
    res.body.setEncoding('utf8');
    for await (const chunk of res.body) split.push(chunk as string, performance.now());
    split.end(performance.now());
  } catch (e) {
    rec.error = spec.signal?.aborted ? 'aborted: benchmark interrupted' : describe(e);
    return rec;
  }
  let chars = 0;
  for (const e of split.events) chars += e.length;
  rec.pending = { events: split.events, times: split.times, st, chars };
  return rec;
}

/** Interpret a record's pending stream (content chunks, usage, errors) into its metrics fields. */
export function finalizeRecord(rec: TracedRecord, chat: boolean, keepEvents = false): TracedRecord {
  const p = rec.pending;
  if (!p) return rec;
  delete rec.pending;
  const s = interpretEvents(p.events, p.times, chat);
  if (keepEvents) {
    rec.events = p.events;
    rec.eventTimes = p.times;
  }
  rec.generatedText = s.text;
  rec.outputTokens = s.completionTokens;
  if (s.promptTokens !== null) rec.promptLen = s.promptTokens;
  if (s.error) {
    rec.error = `stream error: ${s.error}`;
    return rec;
  }
  const ts = s.contentTimes;
  if (!ts.length) {
    rec.error = 'Never received a valid chunk to calculate TTFT. This response will be marked as failed!';
    return rec;
  }
  rec.success = true;
  rec.ttft = (ts[0]! - p.st) / 1000;
  for (let i = 1; i < ts.length; i++) rec.itl.push((ts[i]! - ts[i - 1]!) / 1000);
  rec.latency = (ts[ts.length - 1]! - p.st) / 1000;
  return rec;
}
