// Issue 11 acceptance 3: `pdserve router` over 2 colocated engines (default model, KV events on) with
// roundrobin, prefixaware and kvaware, each against fresh engines, on the same
// `bench serve --dataset-name prefix_repetition` workload. Prefix hit rate is read from the engines'
// vllm:gpu_prefix_cache_hits_total / _queries_total; mean TTFT from the bench's result JSON. kvaware
// must beat roundrobin on hit rate, and its index must have been filled by the engines' events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath } from '../helpers/fixtures.js';
import { freePort, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';

interface Outcome { logic: string; published: number; dropped: number; hitRate: number; hits: number; queries: number; meanTtftMs: number; kvEvents: { batches: number; blocks: number; malformed: number }[] }

const counter = (text: string, name: string) => {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

async function runLogic(logic: string): Promise<Outcome> {
  const engines: Spawned[] = [];
  let router: Spawned | null = null;
  const dir = mkdtempSync(join(tmpdir(), `pds-kvaware-${logic}-`));
  try {
    const eps: string[] = [];
    for (let i = 0; i < 2; i++) {
      const ep = `tcp://127.0.0.1:${await freePort()}`;
      eps.push(ep);
      engines.push(await spawnPdserve(['serve', '--threads', '1', '--kv-events-config', JSON.stringify({ enable_kv_cache_events: true, publisher: 'zmq', endpoint: ep })]));
    }
    router = await spawnPdserve(['router', '--static-backends', engines.map((e) => e.url).join(','), '--routing-logic', logic,
      '--kv-events-endpoints', eps.join(','), '--engine-stats-interval', '1', '--health-check-interval', '1']);
    await new Promise((r) => setTimeout(r, 500)); // the router's SUB sockets join before the first event
    const bench = spawn(process.execPath, [cliPath, 'bench', 'serve', '--base-url', router.url, '--model', 'stories260k', '--tokenizer', 'stories260k',
      '--dataset-name', 'prefix_repetition', '--num-prompts', '32', '--prefix-repetition-prefix-len', '128', '--prefix-repetition-suffix-len', '32',
      '--prefix-repetition-num-prefixes', '4', '--prefix-repetition-output-len', '4', '--ignore-eos', '--max-concurrency', '2', '--seed', '7',
      '--save-result', '--result-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    bench.stdout.on('data', (d) => (out += d));
    bench.stderr.on('data', (d) => (out += d));
    const killer = setTimeout(() => bench.kill('SIGKILL'), 240_000);
    const code = await new Promise<number | null>((r) => bench.on('exit', r));
    clearTimeout(killer);
    assert.equal(code, 0, out);
    const result = JSON.parse(readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.json'))!), 'utf8'));
    assert.equal(result.completed, 32, out);
    let hits = 0;
    let queries = 0;
    let published = 0;
    let dropped = 0;
    for (const e of engines) {
      const m = await (await fetch(`${e.url}/metrics`)).text();
      hits += counter(m, 'vllm:gpu_prefix_cache_hits_total');
      queries += counter(m, 'vllm:gpu_prefix_cache_queries_total');
      published += counter(m, 'pdserve:kv_events_published_total');
      dropped += counter(m, 'pdserve:kv_events_dropped_total');
    }
    const list = (await (await fetch(`${router.url}/engines`)).json()) as { kv_events?: { batches: number; blocks: number; malformed: number } | null }[];
    return { logic, published, dropped, hits, queries, hitRate: hits / queries, meanTtftMs: result.mean_ttft_ms, kvEvents: list.map((e) => e.kv_events ?? { batches: 0, blocks: 0, malformed: 0 }) };
  } finally {
    await router?.stop();
    await Promise.all(engines.map((e) => e.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

test('prefix_repetition through the router: kvaware beats roundrobin on prefix hit rate (engines\' own counters)', { timeout: 600_000 }, async (t) => {
  const results: Outcome[] = [];
  for (const logic of ['roundrobin', 'prefixaware', 'kvaware']) results.push(await runLogic(logic));
  for (const r of results) {
    const line = `${r.logic.padEnd(12)} prefix hit rate ${(100 * r.hitRate).toFixed(1)}% (${r.hits}/${r.queries} tokens), mean TTFT ${r.meanTtftMs.toFixed(2)} ms`;
    console.log(`# ${line}`);
    t.diagnostic(line);
  }
  const [rr, , kv] = results as [Outcome, Outcome, Outcome];
  assert.ok(rr.queries > 0 && kv.queries > 0, 'the engines counted prefix-cache queries');
  assert.ok(kv.hitRate > rr.hitRate, `kvaware ${kv.hitRate} > roundrobin ${rr.hitRate}`);
  assert.ok(kv.published > 0 && kv.dropped === 0, `engines published ${kv.published} batches, dropped ${kv.dropped}`);
  for (const e of kv.kvEvents) {
    assert.ok(e.batches > 0, `the router received KV-event batches from every engine: ${JSON.stringify(kv.kvEvents)}`);
    assert.equal(e.malformed, 0);
  }
  assert.ok(kv.kvEvents.some((e) => e.blocks > 0), 'the index holds blocks reported by the engines');
});
