import { test } from 'node:test';
import assert from 'node:assert/strict';
import { center, fixed, pyFloatStr, rowFloat, rowInt } from './py-format.js';

test('fixed() follows Python .2f, including round-half-even on exact binary ties', () => {
  assert.equal(fixed(0.125), '0.12'); // JS toFixed says 0.13
  assert.equal(fixed(0.375), '0.38');
  assert.equal(fixed(2.675), '2.67'); // not a tie in binary: 2.67499999...
  assert.equal(fixed(1.005), '1.00');
  assert.equal(fixed(12345.678), '12345.68');
  assert.equal(fixed(NaN), 'nan');
  assert.equal(fixed(Infinity), 'inf');
});

test('rows, centred headers, str(float)', () => {
  assert.equal(rowInt('Successful requests:', 1000), 'Successful requests:                     1000      ');
  assert.equal(rowFloat('Mean TTFT (ms):', 12345678.5), 'Mean TTFT (ms):                          12345678.50');
  assert.equal(center(' Serving Benchmark Result ', 50, '='), '============ Serving Benchmark Result ============');
  assert.equal(center('Time to First Token', 50, '-'), '---------------Time to First Token----------------');
  assert.equal(pyFloatStr(10), '10.0');
  assert.equal(pyFloatStr(0.5), '0.5');
  assert.equal(pyFloatStr(Infinity), 'inf');
});
