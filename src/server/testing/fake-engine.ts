// A deterministic EngineClient for server tests. It "generates" the bytes of `text` cycled (one token per
// byte, so multi-byte characters span tokens), honours maxTokens/minTokens/stop/stopTokenIds/ignoreEos/
// eosAfter, and keeps a fake block table: ceil(len / blockSize) blocks per running request, grown as
// tokens are produced, freed when the request finishes, throws, or is aborted. checkIntegrity() verifies
// free + used = total and that no block is owned twice. Abort: the iterator throws an AbortError.
import { setTimeout as sleep } from 'node:timers/promises';
import { PdsError } from '../../util/errors.js';
import type {
  EngineClient, EngineStats, GenerateRequest, ModelInfo, RequestOutput, TokenLogprob,
} from '../../engine/protocol.js';
import { FAKE_EOS, FakeTokenizer } from './fake-tokenizer.js';

export interface FakeEngineOptions {
  text?: string; // generated text, cycled (default 'The quick brown fox jumps over the lazy dog. ')
  tokenDelayMs?: number; // delay before each produced token (default 0)
  numBlocks?: number; // default 1024
  blockSize?: number; // default 16
  eosAfter?: number; // emit EOS as the n-th generated token (0-based), unless ignoreEos
  failAfter?: number; // throw PdsError(PDS_ERR_INTERNAL) after yielding this many increments
  maxModelLen?: number; // default 4096
  hasChatTemplate?: boolean; // default true
  dummyWeights?: boolean;
  name?: string; // default 'fake-model'
}

interface Running {
  blocks: number[];
}

function abortError(): Error {
  return new DOMException('The operation was aborted', 'AbortError');
}

/** Number of leading tokens that form complete UTF-8 (byte tokens < 256; other ids are atomic). */
function completePrefix(tokens: number[]): number {
  let end = tokens.length;
  for (let back = 1; back <= 4 && end - back >= 0; back++) {
    const t = tokens[end - back]!;
    if (t >= 256) return end; // special token: boundary
    if ((t & 0xc0) === 0x80) continue; // continuation byte
    const need = t >= 0xf0 ? 4 : t >= 0xe0 ? 3 : t >= 0xc0 ? 2 : 1;
    return back >= need ? end : end - back;
  }
  return end;
}

export class FakeEngine implements EngineClient {
  readonly model: ModelInfo;
  readonly tokenizer: FakeTokenizer;
  readonly opts: Required<Omit<FakeEngineOptions, 'eosAfter' | 'failAfter'>> & Pick<FakeEngineOptions, 'eosAfter' | 'failAfter'>;
  healthy = true;
  /** Thrown by the next generate() call (once), to test error mapping. */
  nextError: Error | null = null;
  /** Every request received, in order (for asserting what the server built). */
  readonly requests: GenerateRequest[] = [];
  readonly aborted: string[] = [];
  private free: number[];
  private readonly running = new Map<string, Running>();
  private readonly seenPrefixes = new Set<string>();
  private queries = 0;
  private hits = 0;

  constructor(options: FakeEngineOptions = {}) {
    this.opts = {
      text: 'The quick brown fox jumps over the lazy dog. ',
      tokenDelayMs: 0, numBlocks: 1024, blockSize: 16, maxModelLen: 4096,
      hasChatTemplate: true, dummyWeights: false, name: 'fake-model', ...options,
    };
    this.tokenizer = new FakeTokenizer({ hasChatTemplate: this.opts.hasChatTemplate });
    this.model = {
      name: this.opts.name, root: `/models/${this.opts.name}`, maxModelLen: this.opts.maxModelLen,
      vocabSize: this.tokenizer.vocabSize, dummyWeights: this.opts.dummyWeights,
      description: `${this.opts.name}: byte-level fake engine for tests`,
    };
    this.free = Array.from({ length: this.opts.numBlocks }, (_, i) => i);
  }

  get numRunning(): number {
    return this.running.size;
  }

  usedBlocks(): number {
    return this.opts.numBlocks - this.free.length;
  }

  stats(): EngineStats {
    return {
      numRequestsRunning: this.running.size, numRequestsWaiting: 0,
      kvCacheUsage: this.usedBlocks() / this.opts.numBlocks,
      numBlocksTotal: this.opts.numBlocks, numBlocksFree: this.free.length,
      prefixCacheQueries: this.queries, prefixCacheHits: this.hits, numPreemptions: 0,
    };
  }

  checkIntegrity(): void {
    const owned = new Set<number>();
    let used = 0;
    for (const [id, r] of this.running) {
      for (const b of r.blocks) {
        if (owned.has(b) || this.free.includes(b)) throw new Error(`block ${b} of ${id} is owned twice`);
        owned.add(b);
        used++;
      }
    }
    if (used + this.free.length !== this.opts.numBlocks) {
      throw new Error(`free ${this.free.length} + used ${used} != total ${this.opts.numBlocks}`);
    }
  }

  isHealthy(): boolean {
    return this.healthy;
  }

  async shutdown(): Promise<void> {
    this.healthy = false;
  }

  private ensureBlocks(r: Running, numTokens: number): void {
    const need = Math.ceil(numTokens / this.opts.blockSize);
    while (r.blocks.length < need) {
      const b = this.free.pop();
      if (b === undefined) throw new PdsError('PDS_ERR_OVERLOADED', 'fake engine: out of KV blocks');
      r.blocks.push(b);
    }
  }

  private countCached(prompt: number[]): number {
    const bs = this.opts.blockSize;
    const maxBlocks = Math.floor((prompt.length - 1) / bs);
    let hit = 0;
    while (hit < maxBlocks && this.seenPrefixes.has(prompt.slice(0, (hit + 1) * bs).join(','))) hit++;
    for (let b = 0; b < Math.floor(prompt.length / bs); b++) this.seenPrefixes.add(prompt.slice(0, (b + 1) * bs).join(','));
    return hit * bs;
  }

  private fakeLogprob(tokenId: number, i: number, k: number): TokenLogprob {
    const logprob = -(0.05 + (i % 7) * 0.1);
    const top = Array.from({ length: k }, (_, j) => ({
      tokenId: j === 0 ? tokenId : (tokenId + j) % 256,
      logprob: j === 0 ? logprob : logprob - j * 0.5,
    }));
    return { tokenId, logprob, top };
  }

  async *generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<RequestOutput> {
    this.requests.push(req);
    if (this.nextError) {
      const e = this.nextError;
      this.nextError = null;
      throw e;
    }
    if (this.running.has(req.requestId)) throw new PdsError('PDS_ERR_BAD_REQUEST', `duplicate request id ${req.requestId}`);
    if (signal?.aborted) throw abortError();
    const r: Running = { blocks: [] };
    this.running.set(req.requestId, r);
    const s = req.sampling;
    const prompt = req.promptTokenIds;
    const phrase = [...Buffer.from(this.opts.text, 'utf8')];
    const generated: number[] = []; // every token id produced
    const textTokens: number[] = []; // those that count as text (not EOS / stop ids)
    let emitted = 0; // chars of text already sent
    const holdBack = Math.max(0, ...s.stop.map((x) => x.length - 1));
    try {
      this.ensureBlocks(r, prompt.length);
      this.queries += prompt.length;
      const cached = this.countCached(prompt);
      this.hits += cached;
      for (let i = 0; ; i++) {
        if (this.opts.tokenDelayMs > 0) await sleep(this.opts.tokenDelayMs, undefined, { signal });
        else await new Promise((res) => setImmediate(res));
        if (signal?.aborted) throw abortError();
        if (this.opts.failAfter === i) throw new PdsError('PDS_ERR_INTERNAL', `fake engine failed after ${i} tokens`);
        let tok = phrase[i % phrase.length]!;
        if (this.opts.eosAfter === i && !s.ignoreEos) tok = FAKE_EOS;
        generated.push(tok);
        this.ensureBlocks(r, prompt.length + generated.length);
        let finishReason: RequestOutput['finishReason'];
        let stopReason: RequestOutput['stopReason'] = null;
        const canStop = generated.length > s.minTokens;
        if (canStop && tok === FAKE_EOS && !s.ignoreEos) finishReason = 'stop';
        else if (canStop && s.stopTokenIds.includes(tok)) {
          finishReason = 'stop';
          stopReason = tok;
        } else textTokens.push(tok);
        let text = this.tokenizer.decode(textTokens.slice(0, completePrefix(textTokens)), { skipSpecialTokens: s.skipSpecialTokens });
        if (!finishReason && canStop) {
          for (const stop of s.stop) {
            const at = text.indexOf(stop);
            if (at >= 0) {
              text = text.slice(0, at + (s.includeStopStrInOutput ? stop.length : 0));
              finishReason = 'stop';
              stopReason = stop;
              break;
            }
          }
        }
        if (!finishReason && generated.length >= s.maxTokens) finishReason = 'length';
        const visible = finishReason ? text.length : Math.max(emitted, text.length - holdBack);
        const out: RequestOutput = {
          requestId: req.requestId,
          newTokenIds: [tok],
          newText: text.slice(emitted, visible),
          finished: finishReason !== undefined,
          promptTokenIds: prompt,
          numCachedTokens: cached,
        };
        emitted = visible;
        if (s.logprobs !== null) out.newLogprobs = [this.fakeLogprob(tok, i, s.logprobs)];
        if (finishReason) {
          out.finishReason = finishReason;
          out.stopReason = stopReason;
          if (req.kvTransferParams?.['do_remote_decode']) {
            out.kvTransferParams = {
              do_remote_prefill: true, do_remote_decode: false, remote_engine_id: 'fake-engine',
              remote_request_id: req.requestId, remote_block_ids: [...r.blocks], remote_host: '127.0.0.1',
              remote_port: 5600, tp_size: 1,
            };
          }
        }
        yield out;
        if (finishReason) return;
      }
    } catch (e) {
      if (signal?.aborted) this.aborted.push(req.requestId);
      throw e;
    } finally {
      this.free.push(...r.blocks);
      this.running.delete(req.requestId);
    }
  }
}
