// Scheduler over a real BlockManager: continuous batching admission (running first, FCFS, maxNumSeqs),
// the chunked-prefill token budget, preemption by recompute (newest first) when blocks run out, prefix-cache
// hits at admission, the connector's external-KV path, and delayed frees. Every step ends with the block
// manager's integrity check over the scheduler's live tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockManager } from './block-manager.js';
import { Scheduler, type SchedulerOutput } from './scheduler.js';
import { Sequence } from './sequence.js';
import { defaultSamplingParams } from './protocol.js';
import type { ConnectorRequest, KvConnector } from './connector/base.js';

const bs = 4;
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const seq = (id: string, prompt: number[]) => new Sequence(id, prompt, { ...defaultSamplingParams });

/**
 * One engine step around schedule(): every scheduled sequence computes its tokens; one that reaches the end
 * of its tokens samples one more (token 7); full blocks are registered for prefix reuse. Checks integrity.
 */
function step(s: Scheduler, bm: BlockManager): SchedulerOutput {
  const out = s.schedule();
  for (const { seq: q, numNewTokens } of out.scheduled) {
    q.numComputedTokens += numNewTokens;
    bm.commitFullBlocks(q.blockTable, q.blockHashes, q.tokenIds, q.numComputedTokens);
    if (q.numComputedTokens === q.numTokens) q.appendToken(7);
  }
  bm.checkIntegrity(s.liveTables());
  return out;
}
const plan = (out: SchedulerOutput) => out.scheduled.map((x) => [x.seq.requestId, x.numNewTokens]);
const batched = (out: SchedulerOutput) => out.scheduled.reduce((a, x) => a + x.numNewTokens, 0);

test('continuous batching: running sequences first, new ones admitted as slots free up (maxNumSeqs)', () => {
  const bm = new BlockManager(32, bs, false);
  const s = new Scheduler({ maxNumBatchedTokens: 64, maxNumSeqs: 2 }, bm, null);
  const a = seq('a', range(5)), b = seq('b', range(3)), c = seq('c', range(6));
  s.add(a); s.add(b); s.add(c);
  assert.deepEqual(plan(step(s, bm)), [['a', 5], ['b', 3]], 'FCFS up to maxNumSeqs');
  assert.deepEqual(s.waiting.map((q) => q.requestId), ['c']);
  assert.equal(a.status, 'running');
  assert.deepEqual(plan(step(s, bm)), [['a', 1], ['b', 1]], 'decode steps; c still waits for a slot');
  assert.equal(s.finish(b, null), true, 'blocks freed at once');
  assert.equal(b.blockTable.length, 0);
  assert.deepEqual(plan(step(s, bm)), [['a', 1], ['c', 6]], 'c joins the running batch beside a decode');
  assert.equal(s.hasWork(), true);
  s.finish(a, null); s.finish(c, null);
  assert.equal(s.hasWork(), false);
  assert.equal(bm.numFreeBlocks, 32);
});

test('chunked prefill: a long prompt is split across steps under the token budget, decodes go first', () => {
  const bm = new BlockManager(32, bs, false);
  const s = new Scheduler({ maxNumBatchedTokens: 6, maxNumSeqs: 4 }, bm, null);
  const a = seq('a', range(3)), b = seq('b', range(10));
  s.add(a); s.add(b);
  const o1 = step(s, bm);
  assert.deepEqual(plan(o1), [['a', 3], ['b', 3]]);
  assert.equal(batched(o1), 6);
  assert.ok(b.numComputedTokens < b.numPromptTokens, 'prefill not done');
  assert.equal(b.numOutputTokens, 0, 'a partial prefill samples nothing');
  assert.equal(b.blockTable.length, 1, 'blocks only for what is computed so far');
  assert.deepEqual(plan(step(s, bm)), [['a', 1], ['b', 5]]);
  assert.equal(b.blockTable.length, 2);
  const o3 = step(s, bm);
  assert.deepEqual(plan(o3), [['a', 1], ['b', 2]], 'the last chunk: only what is left');
  assert.equal(batched(o3), 3);
  assert.ok(b.numComputedTokens >= b.numPromptTokens, 'prefill done');
  assert.equal(b.numOutputTokens, 1);
});

test('preemption: when a running sequence cannot grow, the newest is preempted and recomputed later', () => {
  const bm = new BlockManager(4, bs, false);
  const s = new Scheduler({ maxNumBatchedTokens: 64, maxNumSeqs: 8 }, bm, null);
  const a = seq('a', range(7)), b = seq('b', range(7, 20));
  s.add(a); s.add(b);
  step(s, bm); // both prefilled: 2 blocks each, pool empty, each now 8 tokens
  assert.equal(bm.numFreeBlocks, 0);
  assert.deepEqual(plan(step(s, bm)), [['a', 1], ['b', 1]], 'the 8th token still fits in 2 blocks');
  const o = step(s, bm); // the 9th token needs a third block: b goes
  assert.deepEqual(plan(o), [['a', 1]]);
  assert.equal(b.status, 'waiting');
  assert.equal(b.numComputedTokens, 0, 'recompute from scratch');
  assert.equal(b.blockTable.length, 0);
  assert.equal(b.numPreemptions, 1);
  assert.equal(s.numPreemptions, 1);
  assert.deepEqual(s.waiting, [b], 'back at the front of the queue');
  assert.equal(a.blockTable.length, 3);
  assert.deepEqual(plan(step(s, bm)), [['a', 1]], 'b cannot fit yet (needs 3 blocks, 1 free)');
  s.finish(a, null);
  const again = step(s, bm);
  assert.deepEqual(plan(again), [['b', 9]], 'prompt and generated tokens recomputed together');
  assert.equal(b.numOutputTokens, 3, 'generated tokens survive preemption');
});

test('preemption of the sequence itself when it is the newest and nothing else can give way', () => {
  const bm = new BlockManager(2, bs, false);
  const s = new Scheduler({ maxNumBatchedTokens: 64, maxNumSeqs: 8 }, bm, null);
  const a = seq('a', range(8));
  s.add(a);
  step(s, bm); // 8 tokens in 2 blocks, 9 tokens now
  const o = step(s, bm);
  assert.deepEqual(plan(o), []);
  assert.equal(a.numPreemptions, 1);
  assert.deepEqual(s.waiting, [a]);
  assert.equal(bm.numFreeBlocks, 2);
});

test('prefix cache at admission: the shared full blocks are reused and counted as cached tokens', () => {
  const bm = new BlockManager(32, bs, true);
  const s = new Scheduler({ maxNumBatchedTokens: 64, maxNumSeqs: 8 }, bm, null);
  const a = seq('a', range(10, 100));
  s.add(a);
  step(s, bm);
  const b = seq('b', [...range(8, 100), 5, 5, 5]);
  s.add(b);
  assert.deepEqual(plan(step(s, bm)), [['a', 1], ['b', 3]], 'b computes only past the 2 cached blocks');
  assert.equal(b.numCachedTokens, 8);
  assert.deepEqual(b.blockTable.slice(0, 2), a.blockTable.slice(0, 2));
  assert.notEqual(b.blockTable[2], a.blockTable[2]);
  assert.equal(bm.prefixHits, 8);
  assert.equal(bm.prefixQueries, 10 + 11);
});

/** A connector with only the scheduler-side calls the scheduler makes; answers per request id. */
function fakeConnector(answers: Map<string, number | null>) {
  const asked: Array<[string, number]> = [];
  const allocs: Array<[string, number[], number]> = [];
  const c = {
    getNumNewMatchedTokens(req: ConnectorRequest, numComputed: number) {
      asked.push([req.requestId, numComputed]);
      const count = answers.has(req.requestId) ? answers.get(req.requestId)! : 0;
      return { count };
    },
    updateStateAfterAlloc(req: ConnectorRequest, blockIds: readonly number[], numExternal: number) {
      allocs.push([req.requestId, [...blockIds], numExternal]);
    },
  };
  return { connector: c as unknown as KvConnector, asked, allocs };
}

test('connector: "ask later" does not block the queue; external KV loads into held blocks, then computes the rest', () => {
  const bm = new BlockManager(32, bs, false);
  const answers = new Map<string, number | null>([['a', null], ['c', 0]]);
  const { connector, asked, allocs } = fakeConnector(answers);
  const s = new Scheduler({ maxNumBatchedTokens: 64, maxNumSeqs: 8 }, bm, connector);
  const a = seq('a', range(12)), c = seq('c', range(4, 50));
  s.add(a); s.add(c);
  assert.deepEqual(plan(step(s, bm)), [['c', 4]], 'a waits for its lookup, c goes ahead');
  assert.equal(a.status, 'waiting');
  answers.set('a', 20); // more than the prompt: clamped to leave the last token to compute
  assert.deepEqual(plan(step(s, bm)), [['c', 1]]);
  assert.equal(a.status, 'waiting_for_remote_kv');
  assert.equal(a.numExternalTokens, 11);
  assert.equal(a.numComputedTokens, 0);
  assert.equal(a.blockTable.length, 3, 'blocks for the 11 external tokens are held while they load');
  assert.deepEqual(allocs.at(-1), ['a', a.blockTable, 11]);
  assert.deepEqual(plan(step(s, bm)), [['c', 1]], 'a is not scheduled while loading');
  assert.ok(a.kvLookupAt !== null && a.kvMatchedAt! >= a.kvLookupAt && a.kvLoadStartAt! >= a.kvMatchedAt!, 'lookup, match and load start stamped');
  assert.equal(a.kvLoadDoneAt, null);
  s.onLoadDone(a, null);
  assert.ok(a.kvLoadDoneAt! >= a.kvLoadStartAt!);
  assert.equal(a.kvLoadedTokens, 11, 'the timing counts what came in');
  assert.equal(c.kvLoadStartAt, null, 'c had nothing to load');
  assert.equal(a.numComputedTokens, 11);
  assert.equal(a.numCachedTokens, 11);
  assert.deepEqual(plan(step(s, bm)), [['c', 1], ['a', 1]], 'only the last prompt token is computed');
  assert.equal(a.numOutputTokens, 1);
  assert.deepEqual(asked.filter(([id]) => id === 'a'), [['a', 0], ['a', 0]]);
});

test('connector: a failed load recomputes from the failed token; a preempted sequence does not ask again', () => {
  const bm = new BlockManager(32, bs, true);
  const { connector, asked } = fakeConnector(new Map([['a', 8]]));
  const s = new Scheduler({ maxNumBatchedTokens: 64, maxNumSeqs: 8 }, bm, connector);
  const a = seq('a', range(12));
  s.add(a);
  step(s, bm);
  assert.equal(a.status, 'waiting_for_remote_kv');
  s.onLoadDone(a, 4);
  assert.equal(a.kvLoadedTokens, 4, 'a failed load counts the tokens before the failed one');
  assert.equal(a.status, 'waiting');
  assert.equal(a.numExternalTokens, 0);
  assert.equal(a.numComputedTokens, 0, 'nothing local was computed before the failed range');
  assert.deepEqual(plan(step(s, bm)), [['a', 12]], 'the whole prompt is computed locally');
  // a sequence that has been preempted never asks the connector again
  const b = seq('b', range(5, 60));
  b.numPreemptions = 1;
  s.add(b);
  step(s, bm);
  assert.ok(!asked.some(([id]) => id === 'b'));
});

test('finish with delayFree holds the blocks until release (a save in flight)', () => {
  const bm = new BlockManager(8, bs, false);
  const s = new Scheduler({ maxNumBatchedTokens: 64, maxNumSeqs: 8 }, bm, null);
  const a = seq('a', range(6));
  s.add(a);
  step(s, bm);
  assert.equal(s.finish(a, 'final-waits'), false);
  assert.equal(a.status, 'finished');
  assert.equal(s.held.get('a'), a);
  assert.equal(bm.numFreeBlocks, 6, 'still held');
  bm.checkIntegrity(s.liveTables()); // the held table counts as a holder
  assert.ok(!s.running.includes(a) && !s.waiting.includes(a), 'out of the queues');
  assert.deepEqual(s.held.release('a'), { seq: a, kind: 'final-waits' });
  assert.equal(bm.numFreeBlocks, 8);
  assert.equal(s.held.release('a'), undefined);
  bm.checkIntegrity(s.liveTables());
});
