// vllm:request_queue_time_seconds (issue 11): a real `pdserve serve` (default model) with
// --max-num-seqs 1, so of two requests sent together the second waits in the engine's queue for the
// first's decode phase (both measured by the engine, so the check does not depend on machine load).
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
    const first = postJson(`${s.url}/v1/completions`, body);
    await new Promise((r) => setTimeout(r, 5));
    const second = postJson(`${s.url}/v1/completions`, body);
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
    const m = await (await fetch(`${s.url}/metrics`)).text();
    assert.equal(num(m, 'vllm:request_queue_time_seconds_count'), 2);
    const sum = num(m, 'vllm:request_queue_time_seconds_sum');
    const decodeEach = num(m, 'vllm:request_decode_time_seconds_sum') / 2; // both decode 48 tokens alike
    assert.ok(sum >= 0.8 * decodeEach, `queued ${sum.toFixed(4)} s in all; one request's decode phase took ${decodeEach.toFixed(4)} s`);
  } finally {
    await s.stop();
  }
});
