// The benchmark loop (vLLM's benchmark()): optional warmups, then requests released at their seeded
// arrival offsets, at most maxConcurrency in flight, until all finish or `stop` aborts (Ctrl+C):
// then nothing more is sent and in-flight requests are aborted (recorded as failed).
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { finalizeRecord, streamRequest, type TracedRecord } from './request.js';
import type { SampleRequest } from './types.js';

export interface RunInput {
  dispatcher: Dispatcher;
  origin: string;
  path: string;
  chat: boolean;
  /** Model name sent in the body. */
  model: string;
  samples: readonly SampleRequest[];
  /** Seconds from the start, one per sample. */
  arrivals: readonly number[];
  maxConcurrency: number | null;
  ignoreEos: boolean;
  temperature: number | null;
  numWarmups: number;
  requestIdPrefix: string;
  /** Aborting it stops the run (partial results are still returned). */
  stop?: AbortSignal;
  /** Called as each request ends (its record is finalised only after the run). */
  onDone?: (r: TracedRecord) => void;
  keepEvents?: boolean;
}

export interface RunOutput {
  /** One per request that was sent, in send order (unsent requests are absent). */
  records: TracedRecord[];
  durationS: number;
  /** performance.now()/1000 when the measured run started. */
  t0: number;
  interrupted: boolean;
}

/** Request body as vLLM's openai / openai-chat request functions build it. */
export function requestBody(s: SampleRequest, inp: Pick<RunInput, 'chat' | 'model' | 'ignoreEos' | 'temperature'>): string {
  const body: Record<string, unknown> = inp.chat
    ? { model: inp.model, messages: [{ role: 'user', content: s.prompt }], max_completion_tokens: s.expectedOutputLen }
    : { model: inp.model, prompt: s.prompt, max_tokens: s.expectedOutputLen };
  body.stream = true;
  body.stream_options = { include_usage: true };
  if (inp.ignoreEos) body.ignore_eos = true;
  if (inp.temperature !== null) body.temperature = inp.temperature;
  return JSON.stringify(body);
}

/** Counting semaphore with a FIFO of waiters (head index: no O(n) shift with thousands queued). */
class Semaphore {
  private waiters: Array<() => void> = [];
  private head = 0;
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.waiters.push(r));
  }
  release(): void {
    if (this.head < this.waiters.length) {
      const w = this.waiters[this.head]!;
      this.waiters[this.head++] = undefined as never;
      if (this.head > 1024 && this.head * 2 > this.waiters.length) {
        this.waiters = this.waiters.slice(this.head);
        this.head = 0;
      }
      w();
    } else {
      this.free++;
    }
  }
}

/** Raw SSE text held for deferred parsing before records are finalised eagerly instead (chars). */
const deferLimitChars = 256 * 1024 * 1024;

export async function runBenchmark(inp: RunInput): Promise<RunOutput> {
  const sem = inp.maxConcurrency ? new Semaphore(inp.maxConcurrency) : null;
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // every in-flight request listens to it
  const onStop = () => abort.abort();
  if (inp.stop?.aborted) abort.abort();
  inp.stop?.addEventListener('abort', onStop, { once: true });
  let heldChars = 0;
  const send = async (s: SampleRequest, id: string, arrivalMs: number): Promise<TracedRecord | null> => {
    if (sem) await sem.acquire();
    try {
      if (abort.signal.aborted) return null; // stopped while queued: never sent
      const r = await streamRequest(inp.dispatcher, {
        origin: inp.origin, path: inp.path, body: requestBody(s, inp), chat: inp.chat, promptLen: s.promptLen,
        requestId: id, signal: abort.signal,
      });
      r.clientQueueTime = r.startTime - arrivalMs / 1000;
      if (r.pending) {
        heldChars += r.pending.chars;
        if (heldChars > deferLimitChars) finalizeRecord(r, inp.chat, inp.keepEvents);
      }
      return r;
    } finally {
      sem?.release();
    }
  };

  try {
    if (inp.numWarmups > 0 && inp.samples.length) {
      const w = inp.samples[0]!;
      await Promise.all(Array.from({ length: inp.numWarmups }, (_, i) => send(w, `${inp.requestIdPrefix}warmup-${i}`, performance.now())));
      heldChars = 0; // warmup records are dropped
    }
    const t0 = performance.now();
    const tasks: Array<Promise<TracedRecord | null>> = [];
    for (let i = 0; i < inp.samples.length && !abort.signal.aborted; i++) {
      const due = t0 + inp.arrivals[i]! * 1000;
      // timers may fire up to a millisecond early: sleep again until the due time has passed
      let stopped = false;
      for (let wait = due - performance.now(); wait > 0; wait = due - performance.now()) {
        try {
          await sleep(Math.max(1, Math.ceil(wait)), undefined, { signal: abort.signal });
        } catch {
          stopped = true; // Ctrl+C
          break;
        }
      }
      if (stopped) break;
      const task = send(inp.samples[i]!, `${inp.requestIdPrefix}${i}`, performance.now());
      tasks.push(task.then((r) => (r && inp.onDone?.(r), r)));
    }
    const done = await Promise.all(tasks);
    const durationS = (performance.now() - t0) / 1000;
    const records = done.filter((r): r is TracedRecord => r !== null);
    for (const r of records) finalizeRecord(r, inp.chat, inp.keepEvents);
    return { records, durationS, t0: t0 / 1000, interrupted: abort.signal.aborted };
  } finally {
    inp.stop?.removeEventListener('abort', onStop);
  }
}
