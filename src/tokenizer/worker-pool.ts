// TokenizerPool: PromptEncoder over worker threads, so a huge or slow prompt never blocks the event loop.
// - size workers, each loads its own tokenizer (tokenize-worker.ts); one job per worker at a time.
// - a FIFO queue of at most maxQueue jobs; beyond it: PDS_ERR_OVERLOADED (429).
// - a job running longer than deadlineMs is the request's fault: its worker is terminated (the only way
//   to stop a synchronous tokenizer) and replaced, the job fails with PDS_ERR_BAD_REQUEST (400).
// - a worker that dies (e.g. its heap limit, maxHeapMb) fails its job the same way and is replaced.
import { Worker } from 'node:worker_threads';
import { PdsError } from '../util/errors.js';
import { getLogger } from '../util/logger.js';
import type { EncodeJob, EncodeResult, SerializedError, WorkerReady } from './encode-protocol.js';
import type { LoadTokenizerOptions } from './load.js';
import type { ChatEncoded, PromptEncoder } from './prompt-encoder.js';
import { NoChatTemplateError, type ChatMessage, type ChatTemplateOptions } from './types.js';

const log = getLogger('tokenizer');

export interface TokenizerPoolOptions {
  load: LoadTokenizerOptions;
  size: number; // >= 1
  maxQueue: number; // jobs waiting for a worker
  deadlineMs: number; // per job, from the moment a worker takes it
  maxHeapMb?: number; // each worker's old-generation limit (default 2048)
}

type Job = { job: EncodeJob; resolve: (r: EncodeResult & { ok: true }) => void; reject: (e: Error) => void };

interface Slot {
  worker: Worker;
  busy: Job | null;
  timer: NodeJS.Timeout | null;
}

function revive(e: SerializedError): Error {
  if (e.name === 'PdsError' && e.code) return new PdsError(e.code as never, e.message, e.param ?? null);
  if (e.name === 'NoChatTemplateError') return new NoChatTemplateError();
  return new PdsError('PDS_ERR_BAD_REQUEST', e.message);
}

export class TokenizerPool implements PromptEncoder {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  private constructor(private readonly o: TokenizerPoolOptions) {}

  /** Starts the workers and resolves once every one has loaded its tokenizer. */
  static async start(o: TokenizerPoolOptions): Promise<TokenizerPool> {
    if (!(o.size >= 1)) throw new PdsError('PDS_ERR_CONFIG', `tokenizer pool size must be >= 1, got ${o.size}`);
    const pool = new TokenizerPool(o);
    try {
      await Promise.all(Array.from({ length: o.size }, () => pool.spawn()));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get queued(): number {
    return this.queue.length;
  }

  private spawn(): Promise<Slot> {
    const worker = new Worker(new URL('./tokenize-worker.js', import.meta.url), {
      workerData: { load: this.o.load },
      resourceLimits: { maxOldGenerationSizeMb: this.o.maxHeapMb ?? 2048 },
    });
    const slot: Slot = { worker, busy: null, timer: null };
    return new Promise((resolve, reject) => {
      const onReady = (m: WorkerReady) => {
        worker.off('error', onEarly);
        if (!m.ready) {
          void worker.terminate();
          return reject(new PdsError('PDS_ERR_MODEL_LOAD', `tokenizer worker: ${m.error.message}`));
        }
        worker.on('message', (r: EncodeResult) => this.onResult(slot, r));
        worker.on('error', (e) => this.onDeath(slot, `tokenizer worker failed: ${e.message}`));
        worker.on('exit', (code) => this.onDeath(slot, `tokenizer worker exited (code ${code})`));
        this.slots.push(slot);
        this.pump();
        resolve(slot);
      };
      const onEarly = (e: Error) => reject(new PdsError('PDS_ERR_MODEL_LOAD', `tokenizer worker: ${e.message}`));
      worker.once('message', onReady);
      worker.once('error', onEarly);
    });
  }

  private submit(make: (id: number) => EncodeJob): Promise<EncodeResult & { ok: true }> {
    if (this.closed) return Promise.reject(new PdsError('PDS_ERR_UNAVAILABLE', 'the tokenizer pool is shut down'));
    if (this.queue.length >= this.o.maxQueue) {
      return Promise.reject(new PdsError('PDS_ERR_OVERLOADED', `the tokenizer queue is full (${this.o.maxQueue} requests waiting); retry later`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ job: make(this.nextId++), resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const j = this.queue.shift();
      if (!j) return;
      slot.busy = j;
      slot.timer = setTimeout(() => this.onDeadline(slot), this.o.deadlineMs);
      slot.worker.postMessage(j.job);
    }
  }

  private finish(slot: Slot): Job | null {
    const j = slot.busy;
    slot.busy = null;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    return j;
  }

  private onResult(slot: Slot, r: EncodeResult): void {
    const j = this.finish(slot);
    if (j && j.job.id === r.id) {
      if (r.ok) j.resolve(r);
      else j.reject(revive(r.error));
    }
    this.pump();
  }

  private onDeadline(slot: Slot): void {
    const j = this.finish(slot);
    j?.reject(new PdsError('PDS_ERR_BAD_REQUEST', `the prompt took longer than ${this.o.deadlineMs / 1000} s to tokenize; send a shorter prompt`, 'prompt'));
    log.warn(`a tokenization ran past its ${this.o.deadlineMs} ms deadline; replacing its worker`);
    this.replace(slot);
  }

  private onDeath(slot: Slot, why: string): void {
    if (!this.slots.includes(slot)) return;
    const j = this.finish(slot);
    j?.reject(new PdsError('PDS_ERR_BAD_REQUEST', `the prompt could not be tokenized (${why})`, 'prompt'));
    if (!this.closed) log.warn(`${why}; replacing it`);
    this.replace(slot);
  }

  private replace(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    slot.worker.removeAllListeners();
    slot.worker.on('error', () => {});
    void slot.worker.terminate();
    if (this.closed) return;
    this.spawn().catch((e) => {
      log.error(`cannot restart a tokenizer worker: ${(e as Error).message}`);
      if (!this.slots.length) for (const q of this.queue.splice(0)) q.reject(new PdsError('PDS_ERR_UNAVAILABLE', 'no tokenizer worker is running'));
    });
  }

  async encode(texts: string[], addSpecialTokens: boolean): Promise<number[][]> {
    const r = await this.submit((id) => ({ id, kind: 'encode', texts, addSpecialTokens }));
    return r.tokenIds.map((a) => Array.from(a));
  }

  async encodeChat(messages: ChatMessage[], opts: ChatTemplateOptions, addSpecialTokens: boolean): Promise<ChatEncoded> {
    const r = await this.submit((id) => ({ id, kind: 'chat', messages, opts, addSpecialTokens }));
    return { text: r.text ?? '', tokenIds: Array.from(r.tokenIds[0]!) };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.reject(new PdsError('PDS_ERR_UNAVAILABLE', 'the tokenizer pool is shut down'));
    const slots = this.slots.splice(0);
    for (const s of slots) {
      this.finish(s)?.reject(new PdsError('PDS_ERR_UNAVAILABLE', 'the tokenizer pool is shut down'));
      s.worker.removeAllListeners();
      s.worker.on('error', () => {});
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
