import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeOrigin, pairHostsPorts, normalizeProxyConfig, defaultProxyConfig } from './config.js';
import { percentile, summarize } from './stats-window.js';
import { prefillBody, decodeBody } from './prefill-body.js';
import { proxyConfigFromFlags } from '../cli/proxy.js';
import { promptSize, isShortPrompt } from './conditional.js';

test('origins and vLLM host/port lists', () => {
  assert.equal(normalizeOrigin('localhost:8100'), 'http://localhost:8100');
  assert.equal(normalizeOrigin('http://10.0.0.1:8200/'), 'http://10.0.0.1:8200');
  assert.throws(() => normalizeOrigin('http://a:1/v1'), /path/);
  assert.throws(() => normalizeOrigin('http://a'), /port/);
  assert.throws(() => normalizeOrigin('ftp://a:1'), /http/);
  assert.deepEqual(pairHostsPorts(['h'], ['8100,8101'], 'prefiller'), ['http://h:8100', 'http://h:8101']);
  assert.deepEqual(pairHostsPorts(['a,b'], ['7'], 'prefiller'), ['http://a:7', 'http://b:7']);
  assert.deepEqual(pairHostsPorts(['a', 'b'], ['1', '2'], 'prefiller'), ['http://a:1', 'http://b:2']);
  assert.deepEqual(pairHostsPorts([], ['9'], 'prefiller'), ['http://localhost:9']);
  assert.throws(() => pairHostsPorts(['a', 'b', 'c'], ['1', '2'], 'prefiller'), /differ/);
  assert.throws(() => pairHostsPorts(['a'], ['x'], 'prefiller'), /port/);
  assert.throws(() => normalizeProxyConfig({ ...defaultProxyConfig, prefillers: [], decoders: [] }), /decoder/);
});

test('CLI flags: vLLM defaults only when no upstream flag; decoders alone = no prefill leg', () => {
  const base = {
    host: '0.0.0.0', port: 9000, prefiller: [], decoder: [], prefillerHost: [], prefillerPort: [], decoderHost: [], decoderPort: [],
    prefillTimeout: 300, decodeTimeout: 600, connectTimeout: 5, healthInterval: 3, statsInterval: 10, maxInflight: 0,
    prefillMaxInflight: 0, localPrefillBelow: 0,
  };
  const c0 = proxyConfigFromFlags(base);
  assert.deepEqual([c0.prefillers, c0.decoders], [['http://localhost:8100'], ['http://localhost:8200']]);
  const c1 = proxyConfigFromFlags({ ...base, decoder: ['http://a:1'] });
  assert.deepEqual([c1.prefillers, c1.decoders], [[], ['http://a:1']]);
  const c2 = proxyConfigFromFlags({ ...base, prefillerHost: ['h'], prefillerPort: ['1', '2'], decoderPort: ['3'] });
  assert.deepEqual([c2.prefillers, c2.decoders], [['http://h:1', 'http://h:2'], ['http://localhost:3']]);
  assert.equal(c2.prefillTimeoutMs, 300_000);
  assert.throws(() => proxyConfigFromFlags({ ...base, prefiller: ['http://a:1'] }), /decoder/);
  assert.equal(c0.kvMode, 'pull', '--kv-mode defaults to pull');
  assert.equal(proxyConfigFromFlags({ ...base, kvMode: 'push' }).kvMode, 'push');
});

test('percentiles match numpy linear interpolation', () => {
  assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
  assert.ok(Math.abs(percentile([1, 2, 3, 4], 99) - 3.97) < 1e-9);
  const s = summarize([30, 10, 20]);
  assert.deepEqual([s.count, s.averageMs, s.medianMs], [3, 20, 20]);
  assert.ok(Number.isNaN(summarize([]).averageMs));
});

test('prefill and decode bodies; the input is not mutated', () => {
  const body = { prompt: 'x', max_tokens: 9, stream: true, stream_options: { include_usage: true }, min_tokens: 2, kv_transfer_params: { a: 1 } };
  const copy = structuredClone(body);
  const p = prefillBody(body);
  assert.deepEqual(p, {
    prompt: 'x', max_tokens: 1, stream: false, kv_transfer_params: { do_remote_decode: true, do_remote_prefill: false },
    decode_limits: { max_tokens: 9, min_tokens: 2 },
  });
  assert.deepEqual(body, copy);
  assert.equal(decodeBody(body, undefined), body);
  assert.equal(decodeBody(body, [1]), body);
  assert.deepEqual(decodeBody(body, { r: 2 }).kv_transfer_params, { r: 2 });
});

test('n > 1 and best_of: the prefill leg asks for one sequence, the decode leg keeps them', () => {
  const body = { prompt: 'x', max_tokens: 9, n: 3, best_of: 5, seed: 4 };
  const p = prefillBody(body);
  assert.equal(p.n, 1);
  assert.equal('best_of' in p, false);
  assert.equal(p.seed, 4);
  assert.deepEqual(decodeBody(body, { r: 2 }), { ...body, kv_transfer_params: { r: 2 } });
});

test('prompt size estimate for conditional disaggregation', () => {
  assert.equal(promptSize({ prompt: 'abcdefgh' }), 2);
  assert.equal(promptSize({ prompt: [1, 2, 3] }), 3);
  assert.equal(promptSize({ prompt: [[1, 2], [3]] }), 3);
  assert.equal(promptSize({ prompt: ['abcd', 'abcdefgh'] }), 3);
  assert.equal(promptSize({ messages: [{ role: 'user', content: 'abcd' }, { role: 'user', content: [{ type: 'text', text: 'abcdefgh' }] }] }), 3);
  assert.equal(promptSize({}), 0);
  assert.equal(isShortPrompt({ prompt: 'abcd' }, 0), false);
  assert.equal(isShortPrompt({ prompt: 'abcd' }, 2), true);
  assert.equal(isShortPrompt({ prompt: 'abcdefgh' }, 2), false);
});
