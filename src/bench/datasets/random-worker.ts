// Worker thread for random-parallel.ts: loads the tokenizer, builds its share of the prompts.
import { parentPort, workerData } from 'node:worker_threads';
import { loadBenchTokenizer } from '../tokenizer-source.js';
import { buildRandomPrompt } from './random.js';
import type { WorkerJob, WorkerReply } from './random-parallel.js';

const job = workerData as WorkerJob;
try {
  const tok = await loadBenchTokenizer(job.tokenizerArg);
  const prompts: Array<[number, string, number, number]> = [];
  for (const i of job.indices) {
    const r = buildRandomPrompt(tok, job.plan, i);
    prompts.push([i, r.prompt, r.promptLen, r.mismatch]);
  }
  parentPort!.postMessage({ ok: true, prompts } satisfies WorkerReply);
} catch (e) {
  parentPort!.postMessage({ ok: false, error: (e as Error).message } satisfies WorkerReply);
}
