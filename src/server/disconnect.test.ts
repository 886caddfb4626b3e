// A client that goes away (streaming or not) aborts its engine requests, and their KV blocks are freed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FakeEngine } from './testing/fake-engine.js';
import { assertNoLeaks, postJson, startHarness, type Harness } from './testing/harness.js';

async function waitFor(cond: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function start(base: string, path: string, body: unknown, signal: AbortSignal, headers: Record<string, string> = {}) {
  return fetch(base + path, {
    method: 'POST', signal, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
}

async function abortedAndFreed(engine: FakeEngine, ids: string[]): Promise<void> {
  await waitFor(() => engine.numRunning === 0, 'the engine to drop the requests');
  for (const id of ids) assert.ok(engine.aborted.includes(id), `${id} was not aborted (aborted: ${engine.aborted})`);
  await assertNoLeaks(engine);
}

describe('client disconnect', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ tokenDelayMs: 5 }); });
  after(async () => { await h.close(); });

  it('mid-stream (completions) aborts the engine request and frees its blocks', async () => {
    const ac = new AbortController();
    const res = await start(h.base, '/v1/completions', { prompt: 'a'.repeat(100), max_tokens: 2000, stream: true }, ac.signal,
      { 'x-request-id': 'gone-1' });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length > 0);
    assert.equal(h.engine.numRunning, 1);
    assert.ok(h.engine.usedBlocks() > 0);
    ac.abort();
    await abortedAndFreed(h.engine, ['gone-1']);
  });

  it('mid-stream (chat) aborts the engine request', async () => {
    const ac = new AbortController();
    const res = await start(h.base, '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'hi' }], stream: true,
    }, ac.signal, { 'x-request-id': 'gone-2' });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    ac.abort();
    await abortedAndFreed(h.engine, ['gone-2']);
  });

  it('mid-stream with list prompts aborts every engine request', async () => {
    const ac = new AbortController();
    const res = await start(h.base, '/v1/completions', { prompt: ['a', 'b', 'c'], max_tokens: 2000, stream: true }, ac.signal,
      { 'x-request-id': 'gone-3' });
    assert.equal(res.status, 200);
    await res.body!.getReader().read();
    await waitFor(() => h.engine.numRunning === 3, 'three running requests');
    ac.abort();
    await abortedAndFreed(h.engine, ['gone-3-0', 'gone-3-1', 'gone-3-2']);
  });

  it('before a non-streaming response aborts the engine request', async () => {
    const ac = new AbortController();
    const pending = start(h.base, '/v1/completions', { prompt: 'a', max_tokens: 2000 }, ac.signal, { 'x-request-id': 'gone-4' });
    await waitFor(() => h.engine.numRunning === 1 && h.engine.usedBlocks() > 0, 'the request to run');
    ac.abort();
    await assert.rejects(pending, { name: 'AbortError' });
    await abortedAndFreed(h.engine, ['gone-4']);
  });

  it('counts aborted requests in vllm:request_success_total{finished_reason="abort"} and keeps serving', async () => {
    const text = await (await fetch(`${h.base}/metrics`)).text();
    const m = /vllm:request_success_total\{model_name="fake-model",finished_reason="abort"\} (\d+)/.exec(text);
    assert.ok(m, text);
    assert.ok(Number(m[1]) >= 6);
    const r = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 2 });
    assert.equal(r.status, 200);
  });
});

describe('server close with a stream in flight', () => {
  it('closes promptly and aborts the engine request', async () => {
    const h = await startHarness({ tokenDelayMs: 5 });
    const res = await start(h.base, '/v1/completions', { prompt: 'a', max_tokens: 3000, stream: true }, new AbortController().signal,
      { 'x-request-id': 'closing' });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    await h.close();
    await abortedAndFreed(h.engine, ['closing']);
    await reader.read().then(() => undefined, () => undefined); // the stream ends or errors; it must not hang
  });
});
