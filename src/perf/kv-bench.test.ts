import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runKvBench, formatKvBench } from './kv-bench.js';

test('bench kv: the native KV cache through the local CPU tier gives finite rates and the table', async () => {
  const r = await runKvBench({ tokens: 512, numLayers: 2, numKvHeads: 2, headDim: 64, kvDtype: 'bf16', chunkSize: 128, blockSize: 16, iters: 1, paths: ['local_cpu'], kvCache: 'native', threads: 1 });
  assert.deepEqual(r.rows.map((x) => x.path), ['gather/scatter only', 'local_cpu']);
  for (const row of r.rows) for (const v of [row.storeGBs, row.retrieveGBs, row.storeRatio, row.retrieveRatio]) assert.ok(Number.isFinite(v) && v > 0, `${row.path}: ${v}`);
  assert.equal(r.kvBytes, 512 * 2 * 2 * 2 * 64 * 2);
  assert.match(formatKvBench(r), /native KV cache on cpu[\s\S]*local_cpu/);
});
