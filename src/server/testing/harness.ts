// Test helpers: a server over a FakeEngine on a random loopback port, JSON/SSE clients, and the
// "nothing leaked" check every test ends with.
import assert from 'node:assert/strict';
import { createApiServer, type ApiServer, type ApiServerOptions } from '../api-server.js';
import { FakeEngine, type FakeEngineOptions } from './fake-engine.js';
import { signRequest } from '../../security/request-signing.js';

/** The internal secret every harness server trusts (pass internalKey: null for none). */
export const TEST_INTERNAL_KEY = Buffer.alloc(32, 0x5a);

/** Headers that make a POST of `body` to `path` a signed (peer) request. */
export function peerHeaders(path: string, body: unknown, key = TEST_INTERNAL_KEY): Record<string, string> {
  return signRequest(key, 'POST', path, typeof body === 'string' ? body : JSON.stringify(body));
}

export interface Harness {
  engine: FakeEngine;
  server: ApiServer;
  base: string; // http://127.0.0.1:PORT
  close(): Promise<void>;
}

export async function startHarness(engineOpts: FakeEngineOptions = {}, serverOpts: Partial<ApiServerOptions> = {}): Promise<Harness> {
  const engine = new FakeEngine(engineOpts);
  const server = createApiServer(engine, { maxModelLen: engine.model.maxModelLen, internalKey: TEST_INTERNAL_KEY, ...serverOpts });
  const port = await server.listen(0, '127.0.0.1');
  return { engine, server, base: `http://127.0.0.1:${port}`, close: () => server.close() };
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function postJson(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null };
}

/** POSTs a streaming request and returns every SSE `data:` payload, parsed ('[DONE]' kept as a string). */
export async function postSse(base: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const isSse = (res.headers.get('content-type') ?? '').startsWith('text/event-stream');
  return { status: res.status, headers: res.headers, events: isSse ? parseSse(text) : [], raw: text };
}

export function parseSse(text: string): any[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const events = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    assert.ok(block.startsWith('data: '), `bad SSE block ${JSON.stringify(block)}`);
    const data = block.slice(6);
    events.push(data === '[DONE]' ? data : JSON.parse(data));
  }
  return events;
}

/** Waits until the engine has no running request, then checks its block accounting is whole. */
export async function assertNoLeaks(engine: FakeEngine, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (engine.numRunning > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(engine.numRunning, 0, 'requests still running in the engine');
  engine.checkIntegrity();
  assert.equal(engine.usedBlocks(), 0, 'KV blocks still allocated');
}

/** The OpenAI error shape, with the expected status and (optionally) param and message fragment. */
export function assertOpenAiError(r: JsonResponse, status: number, param?: string | null, messagePart?: string | RegExp): void {
  assert.equal(r.status, status, `status ${r.status}: ${JSON.stringify(r.json)}`);
  assert.equal(typeof r.json?.error?.message, 'string');
  assert.equal(typeof r.json.error.type, 'string');
  assert.equal(r.json.error.code, status);
  if (param !== undefined) assert.equal(r.json.error.param, param);
  if (messagePart !== undefined) {
    if (typeof messagePart === 'string') assert.ok(r.json.error.message.includes(messagePart), r.json.error.message);
    else assert.match(r.json.error.message, messagePart);
  }
}
