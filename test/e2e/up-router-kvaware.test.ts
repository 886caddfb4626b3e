// `pdserve up --router kvaware` (issue 11): up gives each engine its own KV-event endpoint and the
// router their list, so the router's index fills from the engines' events with no flag by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { postJson } from '../helpers/spawn-server.js';
import { spawnUp } from '../helpers/spawn-up.js';

test('up --router kvaware: the router subscribes to every engine\'s KV events and routes a repeated prefix to its holder', async () => {
  const up = await spawnUp(['--prefill', '0', '--decode', '2', '--router', 'kvaware', '--', '--threads', '1']);
  try {
    await new Promise((r) => setTimeout(r, 500)); // the router's SUB sockets join before the first event
    const prompt = 'Once upon a time, there was a little girl who loved to play outside in the sun. '.repeat(3);
    for (let i = 0; i < 4; i++) {
      const r = await postJson(`${up.url}/v1/completions`, { prompt: prompt + i, max_tokens: 2, temperature: 0 });
      assert.equal(r.status, 200, JSON.stringify(r.json));
    }
    let engines: { url: string; kv_events: { endpoint: string; blocks: number; batches: number } | null }[] = [];
    for (let i = 0; i < 50; i++) {
      engines = (await (await fetch(`${up.url}/engines`)).json()) as typeof engines;
      if (engines.some((e) => (e.kv_events?.blocks ?? 0) > 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(engines.length, 2);
    for (const e of engines) assert.match(e.kv_events?.endpoint ?? '', /^tcp:\/\/127\.0\.0\.1:\d+$/, `${e.url} has its KV-event endpoint`);
    assert.notEqual(engines[0]!.kv_events!.endpoint, engines[1]!.kv_events!.endpoint);
    const holders = engines.filter((e) => e.kv_events!.blocks > 0);
    assert.equal(holders.length, 1, `a shared prefix stays on one engine: ${JSON.stringify(engines.map((e) => e.kv_events))}`);
  } finally {
    await up.stop();
  }
});
