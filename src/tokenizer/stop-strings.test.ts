import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkStop, findStop, holdBackLength } from './stop-strings.js';

test('findStop: earliest match wins, longest on ties, empty stops ignored', () => {
  assert.deepEqual(findStop('abc STOP def END', ['END', 'STOP']), { index: 4, stop: 'STOP' });
  assert.deepEqual(findStop('xxab', ['ab', 'a']), { index: 2, stop: 'ab' });
  assert.equal(findStop('nothing here', ['STOP', '']), null);
  // fromIndex limits the search to matches that can involve text from fromIndex on
  assert.equal(findStop('STOP and more', ['STOP'], 8), null);
  assert.deepEqual(findStop('xxSTO' + 'P', ['STOP'], 5), { index: 2, stop: 'STOP' });
});

test('holdBackLength: the longest tail that is a proper prefix of a stop string', () => {
  assert.equal(holdBackLength('Hello wor', ['world!']), 3);
  assert.equal(holdBackLength('Hello', ['xyz']), 0);
  assert.equal(holdBackLength('ab', ['abc', 'b!']), 2);
  assert.equal(holdBackLength('a<|', ['<|im_end|>', '|x']), 2);
  assert.equal(holdBackLength('STOP', ['STOP']), 0); // a full match is findStop's business
  assert.equal(holdBackLength('', ['abc']), 0);
});

/** Streams `pieces` through checkStop the way a server would; returns what the client receives. */
function streamWithStops(pieces: string[], stops: string[], include = false): { sent: string; stopped: string | null } {
  let text = '';
  let sent = 0;
  let prev = 0;
  let out = '';
  for (const p of pieces) {
    text += p;
    const r = checkStop(text, stops, prev, include);
    prev = text.length;
    if (r.sendEnd > sent) {
      out += text.slice(sent, r.sendEnd);
      sent = r.sendEnd;
    }
    if (r.match) return { sent: out, stopped: r.match.stop };
  }
  return { sent: out + text.slice(sent), stopped: null };
}

test('checkStop streaming never sends text that becomes part of a stop string', () => {
  const full = 'The answer is 42.\n\nUser: next question';
  for (const split of [1, 2, 3, 5, 8]) {
    const pieces: string[] = [];
    for (let i = 0; i < full.length; i += split) pieces.push(full.slice(i, i + split));
    assert.deepEqual(streamWithStops(pieces, ['\n\nUser:']), { sent: 'The answer is 42.', stopped: '\n\nUser:' }, `split ${split}`);
    assert.deepEqual(streamWithStops(pieces, ['\n\nUser:'], true), { sent: 'The answer is 42.\n\nUser:', stopped: '\n\nUser:' });
    assert.deepEqual(streamWithStops(pieces, ['Assistant:']), { sent: full, stopped: null });
  }
});

test('checkStop: a false start is released once it cannot match', () => {
  const r1 = checkStop('value: EN', ['END'], 0);
  assert.equal(r1.sendEnd, 'value: '.length);
  const r2 = checkStop('value: ENX', ['END'], 9);
  assert.deepEqual(r2, { sendEnd: 10, match: null });
  assert.deepEqual(checkStop('abc', [], 0), { sendEnd: 3, match: null });
});
