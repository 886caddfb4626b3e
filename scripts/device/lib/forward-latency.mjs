// Where a decode step's wall time goes on the JS path: N forwardSample calls (batch 1, context 2048,
// greedy) on a built-in card with dummy weights, median wall time per call as JS sees it. Run with
// PDSERVE_TRACE_FORWARD=1 for the binding's and the CUDA backend's own split of each 20th call.
//   node scripts/device/lib/forward-latency.mjs [card=qwen3-0.6b] [device=cuda] [calls=200]
import { loadModel } from '../../../dist/src/engine/loader/load-model.js';
import { resolveModel } from '../../../dist/src/models/resolve.js';
import { greedyRows } from '../../../dist/src/native/binding.js';

const [card = 'qwen3-0.6b', device = 'cuda', calls = '200'] = process.argv.slice(2);
const r = await resolveModel(card, { loadFormat: 'dummy' });
const { model, config } = await loadModel({ dir: r.dir, config: r.config, weights: 'dummy', device });
const bs = 16, ctx = 2048, blocks = ctx / bs + 2;
model.allocKvCache(blocks, bs, config.spec.weightDtype);
const greedy = greedyRows(1);
const batch = (pos) => ({
  tokenIds: Int32Array.of(pos % 1000), positions: Int32Array.of(pos), slotMapping: Int32Array.of(pos),
  queryStartLoc: Int32Array.of(0, 1), contextLens: Int32Array.of(pos + 1),
  blockTables: Int32Array.from({ length: blocks }, (_, i) => i), maxBlocksPerSeq: blocks, logitsIndices: Int32Array.of(0),
});
const t = [];
for (let i = 0; i < Number(calls); i++) {
  const t0 = performance.now();
  await model.forwardSample(batch(ctx + (i % 8)), greedy, false);
  t.push(performance.now() - t0);
}
t.sort((a, b) => a - b);
console.log(`${card} on ${model.deviceName}: forwardSample b=1 ctx ${ctx}: median ${t[t.length >> 1].toFixed(3)} ms, p10 ${t[Math.floor(t.length / 10)].toFixed(3)} ms over ${calls} calls`);
model.dispose();
