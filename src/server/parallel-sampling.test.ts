import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestIndices, choiceCounts, cumulativeLogprob, parseLogitBias } from './parallel-sampling.js';
import { defaultRequestLimits } from './request-limits.js';
import { chatEchoText } from './chat-echo.js';
import { PdsError } from '../util/errors.js';

const lp = (...xs: number[]) => ({ logprobs: xs.map((logprob) => ({ tokenId: 0, logprob, top: [] })) });

test('best_of keeps the n candidates with the highest cumulative logprob, best first, ties by index', () => {
  assert.equal(cumulativeLogprob(lp(-1, -2).logprobs), -3);
  assert.deepEqual(bestIndices([lp(-3), lp(-1, -1), lp(-0.5), lp(-2.5)], 2), [2, 1]);
  assert.deepEqual(bestIndices([lp(-3), lp(-1, -1), lp(-0.5), lp(-2)], 3), [2, 1, 3]); // -2 ties: lower index first
  assert.deepEqual(bestIndices([lp(-1), lp(-1), lp(-1)], 2), [0, 1]);
});

test('n and best_of bounds', () => {
  assert.deepEqual(choiceCounts({}, 1, defaultRequestLimits), { n: 1, bestOf: 1 });
  assert.deepEqual(choiceCounts({ n: 2, best_of: 5 }, 1, defaultRequestLimits), { n: 2, bestOf: 5 });
  const param = (f: () => unknown) => { try { f(); } catch (e) { return (e as PdsError).param; } return null; };
  assert.equal(param(() => choiceCounts({ n: 0 }, 1, defaultRequestLimits)), 'n');
  assert.equal(param(() => choiceCounts({ n: 3, best_of: 2 }, 1, defaultRequestLimits)), 'best_of');
  assert.equal(param(() => choiceCounts({ best_of: 3, stream: true }, 1, defaultRequestLimits)), 'best_of');
  assert.deepEqual(choiceCounts({ n: 3, stream: true }, 1, defaultRequestLimits), { n: 3, bestOf: 3 });
  assert.equal(param(() => choiceCounts({ n: 129 }, 2, defaultRequestLimits)), 'n');
});

test('logit_bias: token ids within the vocabulary, biases in [-100, 100], zeros dropped', () => {
  assert.deepEqual(parseLogitBias({ '5': -100, '7': 0, '9': 2.5 }, 10), [[5, -100], [9, 2.5]]);
  assert.equal(parseLogitBias({}, 10), undefined);
  assert.equal(parseLogitBias(null, 10), undefined);
  const bads: Array<Record<string, number>> = [{ '10': 1 }, { '-1': 1 }, { '1.5': 1 }, { a: 1 }, { '1': 100.5 }, { '1': Number.NaN }];
  for (const bad of bads) {
    assert.throws(() => parseLogitBias(bad, 10), (e: unknown) => e instanceof PdsError && e.param === 'logit_bias', JSON.stringify(bad));
  }
});

test('chat echo: only a final assistant message is echoed', () => {
  assert.equal(chatEchoText([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'Once' }]), 'Once');
  assert.equal(chatEchoText([{ role: 'user', content: 'a' }]), '');
  assert.equal(chatEchoText([{ role: 'assistant', content: [{ type: 'text', text: 'x' }, { type: 'text', text: 'y' }] }]), 'xy');
});
