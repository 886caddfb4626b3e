import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startStub, sendJson, completion, sleep, timeoutAfter } from '../../test/helpers/stub-upstream.js';
import { testProxy } from '../../test/helpers/proxy-harness.js';

const sse = (text: string) => `data: ${JSON.stringify({ choices: [{ index: 0, text }] })}\n\n`;

test('SSE chunks reach the client as the decoder sends them, not buffered', async () => {
  let sentSecond = false;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const p = await startStub((r, res) => sendJson(res, 200, completion('P')));
  const d = await startStub(async (r, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(sse('one'));
    await gate; // chunk 2 only after the client has seen chunk 1
    sentSecond = true;
    res.write(sse('two'));
    res.end('data: [DONE]\n\n');
  });
  const proxy = await testProxy([p.url], [d.url]);
  try {
    const res = await request(`${proxy.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', prompt: 'x', stream: true }),
    });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/event-stream/);
    const it = res.body[Symbol.asyncIterator]();
    const first = await Promise.race([it.next(), timeoutAfter(3000)]);
    assert.notEqual(first, 'timeout', 'chunk 1 must arrive before the decoder sends chunk 2');
    assert.equal(sentSecond, false);
    assert.equal(Buffer.from((first as IteratorResult<Buffer>).value).toString(), sse('one'));
    release();
    let rest = '';
    for (let n = await it.next(); !n.done; n = await it.next()) rest += Buffer.from(n.value).toString();
    assert.equal(rest, sse('two') + 'data: [DONE]\n\n');
  } finally {
    release();
    await proxy.close();
    await p.close();
    await d.close();
  }
});

test('client disconnect during prefill closes the prefill socket and skips decode', async () => {
  const p = await startStub(() => undefined); // never answers
  const d = await startStub((r, res) => sendJson(res, 200, completion('D')));
  const proxy = await testProxy([p.url], [d.url]);
  try {
    const ac = new AbortController();
    const pending = fetch(`${proxy.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x' }), signal: ac.signal }).catch(() => 'aborted');
    while (p.requests.length === 0) await sleep(5);
    ac.abort();
    assert.equal(await pending, 'aborted');
    assert.equal(await Promise.race([p.requests[0]!.closedEarly, timeoutAfter(3000)]), true);
    await sleep(50);
    assert.equal(d.requests.length, 0);
  } finally {
    await proxy.close();
    await p.close();
    await d.close();
  }
});

test('client disconnect mid-stream closes the decode socket', async () => {
  const p = await startStub((r, res) => sendJson(res, 200, completion('P')));
  const d = await startStub((r, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(sse('one')); // then hangs, like a long generation
  });
  const proxy = await testProxy([p.url], [d.url]);
  try {
    const ac = new AbortController();
    const res = await fetch(`${proxy.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x', stream: true }), signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    assert.equal(await p.requests[0]!.closedEarly, false, 'prefill finished normally');
    assert.equal(await Promise.race([d.requests[0]!.closedEarly, timeoutAfter(3000)]), true);
    // the proxy accounts for it
    for (let i = 0; i < 100 && proxy.state.inflight > 0; i++) await sleep(10);
    assert.equal(proxy.state.inflight, 0);
    const m = await proxy.state.metrics.registry.getSingleMetricAsString('pdserve_proxy_errors_total');
    assert.match(m, /kind="client_abort"} 1/);
  } finally {
    await proxy.close();
    await p.close();
    await d.close();
  }
});

test('a decoder that breaks off mid-stream cuts the client stream (no silent truncation)', async () => {
  const d = await startStub((r, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(sse('one'));
    setTimeout(() => res.destroy(), 50);
  });
  const proxy = await testProxy([], [d.url]);
  try {
    const res = await fetch(`${proxy.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x', stream: true }) });
    assert.equal(res.status, 200);
    await assert.rejects(res.text());
  } finally {
    await proxy.close();
    await d.close();
  }
});

test('client disconnect while the decoder computes a non-streaming answer closes the decode socket', async () => {
  const d = await startStub(() => undefined); // never answers
  const proxy = await testProxy([], [d.url]);
  try {
    const ac = new AbortController();
    const pending = fetch(`${proxy.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x' }), signal: ac.signal }).catch(() => 'aborted');
    while (d.requests.length === 0) await sleep(5);
    ac.abort();
    assert.equal(await pending, 'aborted');
    assert.equal(await Promise.race([d.requests[0]!.closedEarly, timeoutAfter(3000)]), true);
    for (let i = 0; i < 100 && proxy.state.inflight > 0; i++) await sleep(10);
    assert.equal(proxy.state.inflight, 0);
    // and GET /v1/models with every decoder gone is a 503 JSON error
    await d.close();
    const m = await fetch(`${proxy.url}/v1/models`);
    assert.equal(m.status, 503);
    assert.equal(((await m.json()) as any).error.code, 503);
  } finally {
    await proxy.close();
  }
});
