// The random dataset built on worker threads (decode/re-encode of long prompts costs milliseconds
// each in JS): same plan, same per-request padding streams, so the result equals sampleRandom's.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { SampleRequest } from '../types.js';
import type { Tokenizer } from '../../tokenizer/types.js';
import { planRandom, sampleRandom, type RandomOptions, type RandomPlan } from './random.js';

export interface WorkerJob {
  tokenizerArg: string;
  plan: RandomPlan;
  indices: number[];
}
export type WorkerReply = { ok: true; prompts: Array<[number, string, number, number]> } | { ok: false; error: string };

/** Below this many prompt tokens, threads are not worth their start-up (tokenizer load per thread). */
const parallelMinTokens = 200_000;

export async function sampleRandomParallel(
  tok: Tokenizer, tokenizerArg: string, o: RandomOptions, minTokens = parallelMinTokens,
): Promise<{ requests: SampleRequest[]; mismatch: number }> {
  const threads = Math.min(availableParallelism(), 8, Math.ceil(o.numRequests / 16));
  if (threads < 2 || o.numRequests * (o.inputLen + o.prefixLen) < minTokens) return sampleRandom(tok, o);
  const plan = planRandom(tok, o);
  const jobs: number[][] = Array.from({ length: threads }, () => []);
  for (let i = 0; i < o.numRequests; i++) jobs[i % threads]!.push(i);
  const replies = await Promise.all(jobs.map((indices) => runWorker({ tokenizerArg, plan, indices })));
  const requests = new Array<SampleRequest>(o.numRequests);
  let mismatch = 0;
  for (const rep of replies) {
    for (const [i, prompt, promptLen, mm] of rep) {
      requests[i] = { prompt, promptLen, expectedOutputLen: plan.outputLens[i]! };
      mismatch += mm;
    }
  }
  return { requests, mismatch };
}

function runWorker(job: WorkerJob): Promise<Array<[number, string, number, number]>> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./random-worker.js', import.meta.url), { workerData: job });
    w.once('message', (m: WorkerReply) => {
      void w.terminate();
      if (m.ok) resolve(m.prompts);
      else reject(new Error(m.error));
    });
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`prompt worker exited with code ${code}`)));
  });
}
