// Grammar compilation for one model's vocabulary: specs are checked in a worker thread (isolated WASM
// instance, per-job deadline, bounded queue) by converting them into a Grammar (no vocabulary work), then
// the main thread's instance compiles them against the vocabulary — once per distinct spec (specKey),
// cached (LRU). Matchers for requests come from the cached compiled grammars.
// Contract: only specs the worker converted reach the main instance (xgrammar aborts on bad input), and
// only grammars of at most maxGrammarChars characters of normalized EBNF. The one compile blocks the event loop for its duration (tens of
// ms for a 512-token vocabulary; a JSON schema over Qwen3's 152k tokens took 0.8-2.8 s here on a loaded
// 2-core machine); `compiles` counts them (pdserve:grammar_compiles_total).
import { Worker } from 'node:worker_threads';
import type { CompiledGrammar, GrammarCompiler } from '@mlc-ai/web-xgrammar';
import { PdsError } from '../util/errors.js';
import { loadXgrammar } from './xgrammar-loader.js';
import { compileSpec, specKey, type GrammarSpec } from './grammar-spec.js';
import { RequestMatcher } from './request-matcher.js';
import type { GrammarVocab } from './vocab.js';

export interface CompilerInit extends GrammarVocab {
  vocabSize: number; // logits row length (>= encodedVocab.length: padded embeddings)
  stopTokenIds: number[]; // the model's EOS ids: allowed only where the grammar may end
}

/** A grammar check's deadline when none is given (`serve --grammar-compile-timeout` shows it in seconds). */
export const defaultCompileTimeoutMs = 10_000;

export interface GrammarServiceOptions {
  // per spec, its check in the worker (default 10 s; `serve --grammar-compile-timeout`). The main thread's
  // compile that follows is bounded by maxGrammarChars, not by this deadline
  compileTimeoutMs?: number;
  maxPending?: number; // queued specs before 429 (default 32)
  cacheSize?: number; // compiled grammars kept (default 64; each holds per-token mask caches in the WASM heap)
  maxSpecBytes?: number; // longest schema/regex/grammar text (default 256 KiB)
  maxGrammarChars?: number; // longest normalized EBNF the worker may hand the main thread (default 256 KiB)
}

interface Job { id: number; spec: GrammarSpec; resolve: (r: { ms: number; grammarChars: number }) => void; reject: (e: Error) => void }

export class GrammarService {
  private readonly xg = loadXgrammar();
  private compilerP: Promise<GrammarCompiler> | null = null;
  private readonly cache = new Map<string, Promise<CompiledGrammar>>();
  private worker: Worker | null = null;
  private workerReady = false;
  private readonly queue: Job[] = [];
  private current: { job: Job; timer: NodeJS.Timeout } | null = null;
  private nextId = 1;
  private closed = false;
  private readonly opts: Required<GrammarServiceOptions>;
  /** the last spec's check time in the worker and compile time on the main thread (ms): logs, benchmarks */
  lastCheckMs = 0;
  lastCompileMs = 0;
  /** vocabulary compiles so far (one per distinct spec while it stays cached) */
  compiles = 0;

  constructor(private readonly init: CompilerInit, opts: GrammarServiceOptions = {}) {
    this.opts = { compileTimeoutMs: defaultCompileTimeoutMs, maxPending: 32, cacheSize: 64, maxSpecBytes: 256 * 1024, maxGrammarChars: 256 * 1024, ...opts };
  }

  get vocabSize(): number {
    return this.init.vocabSize;
  }

  /** Builds both instances' TokenizerInfo now (otherwise on the first request): compiles a tiny grammar. */
  warm(): Promise<void> {
    return this.compile({ kind: 'choice', choices: ['ok'] }, 'warm-up').then(() => undefined);
  }

  /** A new matcher for `spec`; PdsError 400 naming `param` when the spec does not compile. */
  async matcher(spec: GrammarSpec, param: string): Promise<RequestMatcher> {
    const compiled = await this.compile(spec, param);
    return RequestMatcher.create(this.xg, compiled, this.init.vocabSize);
  }

  async compile(spec: GrammarSpec, param: string): Promise<CompiledGrammar> {
    if (this.closed) throw new PdsError('PDS_ERR_UNAVAILABLE', 'grammar service is closed');
    const key = specKey(spec);
    if (key.length > this.opts.maxSpecBytes) throw new PdsError('PDS_ERR_BAD_REQUEST', `${param} is too long (${key.length} > ${this.opts.maxSpecBytes} characters)`, param);
    let p = this.cache.get(key);
    if (p) {
      this.cache.delete(key); // LRU: most recent last
      this.cache.set(key, p);
      return p;
    }
    p = (async () => {
      const { ms, grammarChars } = await this.check(spec, param);
      this.lastCheckMs = ms;
      if (grammarChars > this.opts.maxGrammarChars) {
        throw new PdsError('PDS_ERR_BAD_REQUEST', `${param} expands to a grammar too large to compile (${grammarChars} > ${this.opts.maxGrammarChars} characters of EBNF)`, param);
      }
      const compiler = await this.compiler();
      const t0 = performance.now();
      this.compiles++;
      // the conversion the worker just ran succeeds here too (deterministic); then the vocabulary work, once
      const cg = await compileSpec(this.xg, compiler, spec);
      this.lastCompileMs = performance.now() - t0;
      return cg;
    })();
    this.cache.set(key, p);
    p.catch(() => this.cache.delete(key));
    while (this.cache.size > this.opts.cacheSize) {
      const oldest = this.cache.keys().next().value!;
      const old = this.cache.get(oldest)!;
      this.cache.delete(oldest);
      // matchers made from it hold their own reference (shared_ptr inside xgrammar)
      old.then((cg) => cg.dispose(), () => undefined);
    }
    return p;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const j of this.queue.splice(0)) j.reject(new PdsError('PDS_ERR_UNAVAILABLE', 'grammar service is closed'));
    await this.killWorker();
  }

  private compiler(): Promise<GrammarCompiler> {
    this.compilerP ??= (async () => {
      const i = this.init;
      const ti = await this.xg.TokenizerInfo.createTokenizerInfo(i.encodedVocab, i.vocabType, i.prependSpace, i.vocabSize, i.stopTokenIds);
      return this.xg.GrammarCompiler.createGrammarCompiler(ti, false);
    })();
    return this.compilerP;
  }

  /** Converts `spec` in the worker; resolves with its grammar's size (EBNF chars) and the time it took (ms). */
  private check(spec: GrammarSpec, param: string): Promise<{ ms: number; grammarChars: number }> {
    if (this.queue.length >= this.opts.maxPending) return Promise.reject(new PdsError('PDS_ERR_OVERLOADED', 'too many grammars compiling; retry later'));
    return new Promise<{ ms: number; grammarChars: number }>((resolve, reject) => {
      this.queue.push({
        id: this.nextId++,
        spec,
        resolve,
        reject: (e) => reject(e instanceof PdsError ? e : new PdsError('PDS_ERR_BAD_REQUEST', `invalid ${param}: ${e.message}`, param)),
      });
      this.pump();
    });
  }

  private pump(): void {
    if (this.current || !this.queue.length || this.closed) return;
    const w = this.ensureWorker();
    if (!this.workerReady) return; // pumped again on its ready message
    const job = this.queue.shift()!;
    const timer = setTimeout(() => {
      this.finishJob(job.id, { ok: false, error: `compiling took longer than ${this.opts.compileTimeoutMs} ms` });
      void this.killWorker();
    }, this.opts.compileTimeoutMs);
    this.current = { job, timer };
    w.postMessage({ id: job.id, spec: job.spec });
  }

  private finishJob(id: number, r: { ok: boolean; ms?: number; grammarChars?: number; error?: string }): void {
    const cur = this.current;
    if (!cur || cur.job.id !== id) return;
    clearTimeout(cur.timer);
    this.current = null;
    if (r.ok) cur.job.resolve({ ms: r.ms ?? 0, grammarChars: r.grammarChars ?? 0 });
    else cur.job.reject(new Error(r.error ?? 'compilation failed'));
    this.pump();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./compile-worker.js', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: 512 } });
    w.unref();
    w.on('message', (m: { ready?: boolean; id: number; ok: boolean; ms?: number; grammarChars?: number; error?: string }) => {
      if (m.ready) {
        if (this.worker === w) this.workerReady = true;
        this.pump();
        return;
      }
      // a failed compile leaves that WASM instance unusable: start a fresh worker for the next job
      if (!m.ok) void this.killWorker();
      this.finishJob(m.id, m);
    });
    // an unexpected end fails the job in flight; a worker we replaced on purpose ends silently
    w.on('error', (e) => this.workerGone(w, `compiler worker failed: ${e.message}`));
    w.on('exit', () => this.workerGone(w, 'compiler worker exited'));
    this.worker = w;
    return w;
  }

  /** An unexpected end fails the job in flight (or, before the worker was ready, the next queued one:
   * no restart loop); a worker replaced on purpose ends silently. */
  private workerGone(w: Worker, why: string): void {
    if (this.worker !== w) return;
    const wasReady = this.workerReady;
    this.worker = null;
    this.workerReady = false;
    if (this.current) this.finishJob(this.current.job.id, { ok: false, error: why });
    else if (!wasReady && this.queue.length) {
      this.queue.shift()!.reject(new PdsError('PDS_ERR_UNAVAILABLE', `structured output unavailable: ${why}`));
      this.pump();
    }
  }

  private async killWorker(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    this.workerReady = false;
    if (w) await w.terminate();
  }
}
