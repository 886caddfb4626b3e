import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseSplitter, interpretEvents } from './sse-events.js';

test('SseSplitter: events split across network chunks, CRLF, unterminated final event', () => {
  const s = new SseSplitter();
  s.push('data: {"choices":[{"text":"a"}]}\n', 1);
  s.push('\ndata: {"choices":[{"text":"b"}]}\r\n\r\ndata: {"cho', 2);
  s.push('ices":[{"text":"c"}]}\n\n: ping\n\n', 3);
  s.push('data: [DONE]', 4);
  s.end(5);
  assert.deepEqual(s.times, [2, 2, 3, 3, 5]);
  assert.equal(s.events[2], 'data: {"choices":[{"text":"c"}]}');
  const r = interpretEvents(s.events, s.times, false);
  assert.deepEqual(r.contentTimes, [2, 2, 3]);
  assert.equal(r.text, 'abc');
});

test('interpretEvents: empty-content chunks are not tokens; usage; chat deltas; in-stream errors', () => {
  const ev = [
    'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}',
    'data: {"choices":[{"delta":{"content":"Hi"}}]}',
    'data: {"choices":[{"delta":{},"finish_reason":"length"}]}',
    'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}',
    'data: [DONE]',
  ];
  const r = interpretEvents(ev, [1, 2, 3, 4, 5], true);
  assert.deepEqual(r.contentTimes, [2]);
  assert.equal(r.completionTokens, 2);
  assert.equal(r.promptTokens, 5);
  assert.equal(r.error, null);
  const e = interpretEvents(['data: {"error":{"message":"boom"}}', 'data: not json'], [1, 2], false);
  assert.equal(e.error, 'boom');
});
