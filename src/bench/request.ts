// One streamed OpenAI request -> RequestRecord. Hot path: performance.now() and SseSplitter.push per
// network chunk; everything else happens after the stream ends. Never throws: failures become
// records with success=false and an error text.
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
  /** Keep raw events and their arrival times on the record (benchmarks of the client itself). */
  keepEvents?: boolean;
}

export type TracedRecord = RequestRecord & { events?: string[]; eventTimes?: number[] };

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
  const s = interpretEvents(split.events, split.times, spec.chat);
  if (spec.keepEvents) {
    rec.events = split.events;
    rec.eventTimes = split.times;
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
  rec.ttft = (ts[0]! - st) / 1000;
  for (let i = 1; i < ts.length; i++) rec.itl.push((ts[i]! - ts[i - 1]!) / 1000);
  rec.latency = (ts[ts.length - 1]! - st) / 1000;
  return rec;
}
