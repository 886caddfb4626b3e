import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSize } from './size.js';

test('parses byte sizes (binary units)', () => {
  assert.equal(parseSize('4G'), 4 * 2 ** 30);
  assert.equal(parseSize('512M'), 512 * 2 ** 20);
  assert.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30);
  assert.equal(parseSize('4096'), 4096);
  assert.throws(() => parseSize('lots'), /bad size/);
});
