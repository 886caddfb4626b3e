// A worker_threads tokenizer: loads its own tokenizer from the files the engine used, then answers
// EncodeJobs one by one (encode texts; render a chat template and encode it). Errors go back serialized.
import { parentPort, workerData } from 'node:worker_threads';
import { loadTokenizer } from './load.js';
import type { EncodeJob, EncodeResult, SerializedError, WorkerInit, WorkerReady } from './encode-protocol.js';
import type { Tokenizer } from './types.js';

function serialize(e: unknown): SerializedError {
  const err = e as { name?: string; message?: string; code?: string; param?: string | null };
  return { name: err?.constructor?.name ?? err?.name ?? 'Error', message: String(err?.message ?? e), code: err?.code, param: err?.param ?? null };
}

function run(tok: Tokenizer, job: EncodeJob): { result: EncodeResult; transfer: ArrayBuffer[] } {
  try {
    if (job.kind === 'encode') {
      const ids = job.texts.map((t) => Int32Array.from(tok.encode(t, { addSpecialTokens: job.addSpecialTokens })));
      return { result: { id: job.id, ok: true, tokenIds: ids }, transfer: ids.map((a) => a.buffer as ArrayBuffer) };
    }
    const text = tok.applyChatTemplate(job.messages, job.opts);
    const ids = Int32Array.from(tok.encode(text, { addSpecialTokens: job.addSpecialTokens }));
    return { result: { id: job.id, ok: true, tokenIds: [ids], text }, transfer: [ids.buffer as ArrayBuffer] };
  } catch (e) {
    return { result: { id: job.id, ok: false, error: serialize(e) }, transfer: [] };
  }
}

const port = parentPort!;
const init = workerData as WorkerInit;
loadTokenizer(init.load).then(
  (tok) => {
    port.on('message', (job: EncodeJob) => {
      const { result, transfer } = run(tok, job);
      port.postMessage(result, transfer);
    });
    port.postMessage({ ready: true } satisfies WorkerReady);
  },
  (e) => port.postMessage({ ready: false, error: serialize(e) } satisfies WorkerReady),
);
