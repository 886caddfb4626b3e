// vllm:request_queue_time_seconds (issue 11): a real `pdserve serve` (default model) with
// --max-num-seqs 1, so of two requests sent together the second waits in the engine's queue for the
// whole of the first: one sample near 0 and one at least the first request's length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnPdserve, postJson } from '../helpers/spawn-server.js';

const num = (m: string, name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(m)?.[1] ?? NaN);

test('engine: vllm:request_queue_time_seconds counts the time from arrival to first schedule', async () => {
  const s = await spawnPdserve(['serve', '--max-num-seqs', '1']);
  try {
    const m0 = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(m0, /^# TYPE vllm:request_queue_time_seconds histogram$/m);
    assert.equal(num(m0, 'vllm:request_queue_time_seconds_count'), 0);
    const body = { prompt: 'Once upon a time', max_tokens: 48, temperature: 0, ignore_eos: true };
    const t0 = performance.now();
    const first = postJson(`${s.url}/v1/completions`, body);
    await new Promise((r) => setTimeout(r, 5));
    const second = postJson(`${s.url}/v1/completions`, body);
    const a = await first;
    const firstS = (performance.now() - t0) / 1000;
    assert.equal(a.status, 200);
    assert.equal((await second).status, 200);
    const m = await (await fetch(`${s.url}/metrics`)).text();
    assert.equal(num(m, 'vllm:request_queue_time_seconds_count'), 2);
    const sum = num(m, 'vllm:request_queue_time_seconds_sum');
    assert.ok(sum >= firstS * 0.5, `queued ${sum.toFixed(4)} s in all; the first request took ${firstS.toFixed(4)} s`);
  } finally {
    await s.stop();
  }
});
