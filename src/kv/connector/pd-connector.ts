// PdConnector: the engine's KV connector (base.ts) over pdserve's KV tiers (local CPU, kv-server pool).
//
// Producer (kv_producer | kv_both): buildConnectorMeta turns each prefill step into a save of tokens
// [numComputed, numComputed + numNewTokens); waitForSave stores every chunk that is now fully computed
// (the prompt's partial tail too, with save_unfull_chunk, once the prompt is done), skipping stored ones.
// requestFinished answers delayFree while a planned save has not finished; it is then reported in
// getFinished().doneSending.
// Consumer (kv_consumer | kv_both): getNumNewMatchedTokens starts an async lookup over the tiers in order
// (each extends the prefix the previous found; hits are pinned) and answers null until it resolves
// (or blocking_timeout_secs passes: 0 hits). The hit is capped at prompt length - 1 (the last token is
// computed for its logits) and ignored below min_retrieve_tokens. updateStateAfterAlloc queues the load;
// buildConnectorMeta hands it to startLoadKv, which loads in the background and reports doneRecving
// (failed blocks in getBlockIdsWithLoadErrors: the engine recomputes from the first of them).
//
// Engine assumptions (src/engine/llm-engine.ts): req.numComputedTokens in buildConnectorMeta excludes this
// step's numNewTokens; blockIds are all of the request's blocks from token 0; waitForSave runs after the
// forward of the step whose meta was passed to startLoadKv.
import type { ConnectorMetadata, ConnectorRequest, KvCacheAccess, KvConnector, KvRole, MatchResult } from '../../engine/connector/base.js';
import { FinishedReport } from './finished-report.js';
import { PdsError } from '../../util/errors.js';
import { getLogger, type Logger } from '../../util/logger.js';
import { chunkKeys, modelFingerprint, type ChunkRef, type ModelIdentity } from '../chunk-hash.js';
import type { KvConfig } from '../config.js';
import type { KvTier } from '../tiers/tier.js';
import { saveChunks } from './chunk-saver.js';
import { loadChunks } from './chunk-loader.js';
import { lookupLine, retrievedLine } from './layout.js';
import { isDType, kvBytesPerToken } from '../../util/dtype.js';

interface Lookup {
  keys: ChunkRef[];
  done: boolean;
  hitChunks: number;
  tierOf: KvTier[];
  pins: Array<{ tier: KvTier; keys: string[] }>;
  released: boolean;
  startedAt: number;
  touchedAt: number;
  numComputed: number;
  logged: boolean;
}

interface QueuedLoad {
  requestId: string;
  tokenIds: readonly number[];
  start: number;
  end: number;
  blockIds: readonly number[];
}

export interface PdConnectorStats {
  storedChunks: number;
  skippedChunks: number;
  failedSaves: number;
  lookups: number;
  hitTokens: number;
  loadedTokens: number;
  failedLoads: number;
}

export class PdConnector implements KvConnector {
  private readonly root: Buffer;
  private kv: KvCacheAccess | null = null;
  private readonly lookups = new Map<string, Lookup>();
  private readonly queuedLoads: QueuedLoad[] = [];
  private readonly loading = new Map<string, { cancelled: { value: boolean }; done: Promise<void> }>();
  private readonly finishedWhileLoading = new Set<string>();
  private readonly saveNext = new Map<string, { keys: ChunkRef[]; next: number }>();
  private stagedSaves: ConnectorMetadata['saves'] = [];
  private readonly savesPlanned = new Map<string, number>();
  private readonly finishedWhileSaving = new Set<string>();
  private readonly report = new FinishedReport();
  readonly counters: PdConnectorStats = { storedChunks: 0, skippedChunks: 0, failedSaves: 0, lookups: 0, hitTokens: 0, loadedTokens: 0, failedLoads: 0 };

  constructor(
    readonly role: KvRole,
    private readonly config: KvConfig,
    private readonly identity: ModelIdentity,
    /** Lookup order = this order (local CPU first); producers write to all of them. */
    readonly tiers: readonly KvTier[],
    /** Where the LMCache-format lines go (tests pass a capturing logger). */
    readonly log: Logger = getLogger('kv'),
  ) {
    this.root = modelFingerprint(identity);
  }

  private get loads(): boolean {
    return this.role !== 'kv_producer';
  }
  private get saves(): boolean {
    return this.role !== 'kv_consumer';
  }
  private get timeoutMs(): number {
    return this.config.blocking_timeout_secs * 1000;
  }
  private keysOf(tokens: readonly number[]): ChunkRef[] {
    return chunkKeys(this.root, tokens, this.config.chunk_size, this.config.save_unfull_chunk);
  }

  // ---------------- scheduler side ----------------

  getNumNewMatchedTokens(req: ConnectorRequest, numComputedTokens: number): MatchResult {
    if (!this.loads || !this.tiers.length) return { count: 0 };
    let lk = this.lookups.get(req.requestId);
    const now = performance.now();
    if (!lk) {
      lk = { keys: this.keysOf(req.promptTokenIds), done: false, hitChunks: 0, tierOf: [], pins: [], released: false, startedAt: now, touchedAt: now, numComputed: 0, logged: false };
      this.lookups.set(req.requestId, lk);
      this.counters.lookups++;
      void this.runLookup(lk);
    }
    lk.touchedAt = now;
    if (!lk.done) {
      if (now - lk.startedAt <= this.timeoutMs) return { count: null };
      this.log.warn(`Reqid: ${req.requestId}: KV lookup exceeded blocking_timeout_secs; computing instead`);
      this.releaseLookup(req.requestId);
      return { count: 0 };
    }
    const total = req.promptTokenIds.length;
    let hit = lk.hitChunks ? lk.keys[lk.hitChunks - 1]!.end : 0;
    if (hit >= total) hit = total - 1; // the last prompt token is computed: the engine needs its logits
    if (hit < this.config.min_retrieve_tokens) hit = 0;
    const need = Math.max(0, hit - numComputedTokens);
    lk.numComputed = numComputedTokens;
    if (!lk.logged) {
      lk.logged = true;
      this.counters.hitTokens += hit;
      this.log.info(lookupLine(req.requestId, total, numComputedTokens, hit, need));
    }
    if (need === 0) this.releaseLookup(req.requestId);
    return { count: need };
  }

  private async runLookup(lk: Lookup): Promise<void> {
    let i = 0;
    try {
      for (const tier of this.tiers) {
        if (i >= lk.keys.length || lk.released) break;
        const rest = lk.keys.slice(i).map((k) => k.key);
        const n = await tier.lookupPrefix(rest, { pin: true });
        if (n > 0) lk.pins.push({ tier, keys: rest.slice(0, n) });
        for (let j = 0; j < n; j++) lk.tierOf.push(tier);
        i += n;
      }
    } catch (e) {
      this.log.warn(`KV lookup failed: ${(e as Error).message}`);
    }
    lk.hitChunks = i;
    lk.done = true;
    if (lk.released) this.unpinLookup(lk);
  }

  private unpinLookup(lk: Lookup): void {
    for (const p of lk.pins.splice(0)) void p.tier.unpin(p.keys).catch(() => {});
  }

  /** Forget a request's lookup and drop its pins (now, or when the lookup in flight resolves). */
  private releaseLookup(requestId: string): void {
    const lk = this.lookups.get(requestId);
    if (!lk) return;
    this.lookups.delete(requestId);
    lk.released = true;
    if (lk.done) this.unpinLookup(lk);
  }

  updateStateAfterAlloc(req: ConnectorRequest, blockIds: readonly number[], numExternalTokens: number): void {
    const lk = this.lookups.get(req.requestId);
    if (!lk) return;
    if (numExternalTokens <= 0 || !lk.done) return this.releaseLookup(req.requestId);
    this.queuedLoads.push({ requestId: req.requestId, tokenIds: req.promptTokenIds, start: lk.numComputed, end: lk.numComputed + numExternalTokens, blockIds: [...blockIds] });
  }

  buildConnectorMeta(step: { scheduled: Array<{ req: ConnectorRequest; numNewTokens: number; isPrefillDone: boolean }> }): ConnectorMetadata {
    this.sweepLookups();
    const loads = this.queuedLoads.splice(0);
    const saves: ConnectorMetadata['saves'] = [];
    if (this.saves && this.tiers.length)
      for (const { req, numNewTokens } of step.scheduled) {
        const total = req.promptTokenIds.length;
        const start = req.numComputedTokens;
        const end = Math.min(total, start + numNewTokens);
        if (end <= start) continue; // decode step: decode KV is not saved
        saves.push({ requestId: req.requestId, tokenIds: req.promptTokenIds, start, end, blockIds: [...req.blockIds], isFinalChunk: end >= total });
        this.savesPlanned.set(req.requestId, (this.savesPlanned.get(req.requestId) ?? 0) + 1);
      }
    return { loads, saves };
  }

  /** Lookups whose request never came back for them (e.g. aborted while waiting) release their pins. */
  private sweepLookups(): void {
    const now = performance.now();
    for (const [id, lk] of this.lookups)
      if (lk.done && !this.loading.has(id) && now - lk.touchedAt > 2 * this.timeoutMs) this.releaseLookup(id);
  }

  requestFinished(req: ConnectorRequest, _blockIds: readonly number[]): { delayFree: boolean } {
    const id = req.requestId;
    this.saveNext.delete(id);
    const l = this.loading.get(id);
    if (l) {
      l.cancelled.value = true;
      this.finishedWhileLoading.add(id);
      return { delayFree: true };
    }
    this.releaseLookup(id);
    if ((this.savesPlanned.get(id) ?? 0) > 0) {
      this.finishedWhileSaving.add(id);
      return { delayFree: true };
    }
    return { delayFree: false };
  }

  // ---------------- worker side ----------------

  stats(): Record<string, number> {
    return { ...this.counters };
  }

  registerKvCache(kv: KvCacheAccess): void {
    if (this.config.chunk_size % kv.blockSize !== 0)
      throw new PdsError('PDS_ERR_CONFIG', `kv config: chunk_size ${this.config.chunk_size} must be a multiple of the engine block size ${kv.blockSize}`, 'chunk_size');
    const id = this.identity;
    const expect = isDType(id.kvDtype) ? kvBytesPerToken(id.numLayers, id.numKvHeads, id.headDim, id.kvDtype) : kv.bytesPerToken;
    if (kv.bytesPerToken !== expect)
      throw new PdsError('PDS_ERR_CONFIG', `KV cache has ${kv.bytesPerToken} bytes per token but the model identity implies ${expect}`, 'kv_transfer_config');
    this.kv = kv;
    for (const t of this.tiers) t.attachKvCache?.(kv);
  }

  private requireKv(): KvCacheAccess {
    if (!this.kv) throw new PdsError('PDS_ERR_INTERNAL', 'PdConnector: registerKvCache was not called');
    return this.kv;
  }

  startLoadKv(meta: ConnectorMetadata): void {
    for (const l of meta.loads) this.startLoad(l);
    this.stagedSaves.push(...meta.saves);
  }

  private startLoad(l: QueuedLoad): void {
    const kv = this.requireKv();
    const lk = this.lookups.get(l.requestId);
    const cancelled = { value: false };
    const t0 = performance.now();
    const done = (async () => {
      const out = lk
        ? await loadChunks(kv, { chunks: lk.keys.slice(0, lk.hitChunks), tierOf: lk.tierOf, start: l.start, end: l.end, blockIds: l.blockIds, numLayers: this.identity.numLayers }, this.timeoutMs, cancelled)
        : { loadedTokens: 0, bytes: 0, loadedTo: l.start, error: new Error('no lookup state') };
      const ms = performance.now() - t0;
      this.counters.loadedTokens += out.loadedTokens;
      if (out.error) {
        this.counters.failedLoads++;
        const bs = kv.blockSize;
        const first = Math.floor(out.loadedTo / bs);
        for (let b = first; b < Math.ceil(l.end / bs); b++) this.report.loadError(l.blockIds[b]!);
        this.log.warn(`Reqid: ${l.requestId}: KV load failed after ${out.loadedTo} tokens (${out.error.message}); the engine recomputes the rest`);
      } else this.log.info(retrievedLine(out.loadedTokens, l.end - l.start, l.tokenIds.length, out.bytes, ms));
    })()
      .catch((e) => this.log.error(`Reqid: ${l.requestId}: KV load crashed: ${(e as Error).message}`))
      .finally(() => {
        this.releaseLookup(l.requestId);
        this.loading.delete(l.requestId);
        this.report.received(l.requestId);
        if (this.finishedWhileLoading.delete(l.requestId)) this.report.sent(l.requestId);
      });
    this.loading.set(l.requestId, { cancelled, done });
  }

  async waitForSave(): Promise<void> {
    const saves = this.stagedSaves;
    this.stagedSaves = [];
    for (const s of saves) {
      try {
        await this.saveOne(s);
      } catch (e) {
        this.log.warn(`Reqid: ${s.requestId}: KV save failed: ${(e as Error).message}`);
      }
      const left = (this.savesPlanned.get(s.requestId) ?? 1) - 1;
      if (left > 0) this.savesPlanned.set(s.requestId, left);
      else {
        this.savesPlanned.delete(s.requestId);
        if (this.finishedWhileSaving.delete(s.requestId)) this.report.sent(s.requestId);
      }
    }
  }

  private async saveOne(s: ConnectorMetadata['saves'][number]): Promise<void> {
    const kv = this.requireKv();
    let st = this.saveNext.get(s.requestId);
    if (!st) {
      st = { keys: this.keysOf(s.tokenIds), next: 0 };
      this.saveNext.set(s.requestId, st);
    }
    const todo: ChunkRef[] = [];
    while (st.next < st.keys.length && st.keys[st.next]!.end <= s.end) todo.push(st.keys[st.next++]!);
    if (s.isFinalChunk) this.saveNext.delete(s.requestId);
    if (!todo.length) return;
    const r = await saveChunks(kv, this.tiers, todo, s.blockIds, s.end, this.log);
    this.counters.storedChunks += r.storedChunks;
    this.counters.skippedChunks += r.skippedChunks;
    this.counters.failedSaves += r.failedChunks;
  }

  getFinished(): { doneSending: Set<string>; doneRecving: Set<string> } {
    return this.report.takeFinished();
  }

  getBlockIdsWithLoadErrors(): Set<number> {
    return this.report.takeLoadErrors();
  }

  async shutdown(): Promise<void> {
    for (const l of this.loading.values()) l.cancelled.value = true;
    await Promise.all([...this.loading.values()].map((l) => l.done));
    for (const id of [...this.lookups.keys()]) this.releaseLookup(id);
    await Promise.all(this.tiers.map((t) => t.close()));
  }
}
