// overlapKvSaves: each step's KV saves run in the background while later steps compute. A slow producer
// connector checks, when each save ends, that no other request was given the blocks it was reading (the
// engine retains them, also across preemption), and outputs equal a run that waits for every save.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LLMEngine } from './llm-engine.js';
import { parseEngineConfig } from './config.js';
import { FakeModel } from './testing/fake-model.js';
import type { ConnectorMetadata, ConnectorRequest, KvConnector, MatchResult } from './connector/base.js';
import { defaultSamplingParams } from './protocol.js';

/** Saves every prefill step's blocks, slowly; reports blocks another request held while a save read them. */
class SlowSaver implements KvConnector {
  readonly role = 'kv_producer' as const;
  engine!: LLMEngine;
  private staged: ConnectorMetadata['saves'] = [];
  private planned = new Map<string, number>();
  private finishedWhileSaving = new Set<string>();
  private doneSending = new Set<string>();
  violations: string[] = [];
  saves = 0;
  getNumNewMatchedTokens(): MatchResult {
    return { count: 0 };
  }
  updateStateAfterAlloc(): void {}
  registerKvCache(): void {}
  getBlockIdsWithLoadErrors(): Set<number> {
    return new Set();
  }
  async shutdown(): Promise<void> {}
  buildConnectorMeta(step: { scheduled: Array<{ req: ConnectorRequest; numNewTokens: number }> }): ConnectorMetadata {
    const saves: ConnectorMetadata['saves'] = [];
    for (const { req, numNewTokens } of step.scheduled) {
      const end = Math.min(req.promptTokenIds.length, req.numComputedTokens + numNewTokens);
      if (end <= req.numComputedTokens) continue;
      saves.push({ requestId: req.requestId, tokenIds: req.promptTokenIds, start: req.numComputedTokens, end, blockIds: [...req.blockIds], isFinalChunk: end >= req.promptTokenIds.length });
      this.planned.set(req.requestId, (this.planned.get(req.requestId) ?? 0) + 1);
    }
    return { loads: [], saves };
  }
  startLoadKv(meta: ConnectorMetadata): void {
    this.staged.push(...meta.saves);
  }
  requestFinished(req: ConnectorRequest) {
    if ((this.planned.get(req.requestId) ?? 0) > 0) {
      this.finishedWhileSaving.add(req.requestId);
      return { delayFree: true };
    }
    return { delayFree: false };
  }
  async waitForSave(): Promise<void> {
    const saves = this.staged.splice(0);
    for (const s of saves) {
      const blocks = s.blockIds.slice(0, Math.ceil(s.end / 4));
      await new Promise((r) => setTimeout(r, 3)); // the gather, running while the engine steps on
      this.saves++;
      // blocks of this save must not be in any other live request's table
      const mine = new Set(blocks);
      for (const seq of this.engine.scheduler.running)
        if (seq.requestId !== s.requestId && seq.blockTable.some((b) => mine.has(b))) this.violations.push(`${s.requestId} block reused by ${seq.requestId}`);
      const left = this.planned.get(s.requestId)! - 1;
      if (left > 0) this.planned.set(s.requestId, left);
      else {
        this.planned.delete(s.requestId);
        if (this.finishedWhileSaving.delete(s.requestId)) this.doneSending.add(s.requestId);
      }
    }
  }
  getFinished() {
    const out = { doneSending: this.doneSending, doneRecving: new Set<string>() };
    this.doneSending = new Set();
    return out;
  }
}

async function run(overlap: boolean) {
  const config = parseEngineConfig({ blockSize: 4, maxNumBatchedTokens: 32, maxNumSeqs: 8 });
  const connector = new SlowSaver();
  const numBlocks = 40;
  const engine = new LLMEngine({ config, model: new FakeModel(50, 4), numBlocks, vocabSize: 50, maxModelLen: 512, eosTokenIds: [2], connector, overlapKvSaves: overlap });
  connector.engine = engine;
  const ps = [0, 1, 2, 3].map((k) => Array.from({ length: 30 }, (_, i) => (i * (k + 2) + k) % 50));
  ps.forEach((p, i) => engine.addRequest({ requestId: `r${i}`, promptTokenIds: p, sampling: { ...defaultSamplingParams, temperature: 0, maxTokens: 40, ignoreEos: true } }));
  const out = new Map<string, number[]>();
  while (engine.hasWork()) {
    for (const o of await engine.step()) out.set(o.seq.requestId, [...(out.get(o.seq.requestId) ?? []), ...o.seq.pendingTokenIds.splice(0)]);
    engine.checkIntegrity();
    await new Promise((r) => setImmediate(r));
  }
  await engine.drainSaves();
  engine.checkIntegrity();
  return { out, engine, connector, free: engine.blockManager.numFreeBlocks, numBlocks };
}

test('background KV saves: blocks under a save are never reused, outputs equal waiting for every save', async () => {
  const waited = await run(false);
  const overlapped = await run(true);
  assert.ok(overlapped.engine.stats().numPreemptions > 0, 'expected preemptions (the case retained blocks are for)');
  assert.deepEqual(overlapped.connector.violations, []);
  assert.deepEqual([...overlapped.out.entries()].sort(), [...waited.out.entries()].sort());
  assert.ok(overlapped.connector.saves > 0);
  assert.equal(overlapped.free, overlapped.numBlocks, 'every block back once the saves are drained');
});
