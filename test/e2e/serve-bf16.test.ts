// Issue 5 acceptance 1, bf16 half: every fixture model served with bf16 weights gives the fp32 reference's
// greedy token at every step whose reference margin (top-1 minus top-2 logit) is > 0.05. Checked over HTTP,
// teacher-forced: each case is cut at its steps with margin <= 0.05 (where bf16 may legitimately pick the
// runner-up) and every segment is requested as prompt + the reference tokens before it.
// Runs on the CPU in CI; on a GPU with PDSERVE_TEST_DEVICE=cuda (f32 KV cache, see bf16ServeArgs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixturesOrSkip, fixtureModels, readReference, bf16ServeArgs, type ReferenceCase } from '../helpers/fixtures.js';
import { spawnPdserve, postJson } from '../helpers/spawn-server.js';

const MIN_MARGIN = 0.05;

/** [start, end) step ranges whose every step has margin > MIN_MARGIN. */
export function confidentSegments(c: ReferenceCase): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = 0;
  c.greedy_margins.forEach((m, i) => {
    if (m > MIN_MARGIN) return;
    if (i > start) out.push([start, i]);
    start = i + 1;
  });
  if (start < c.greedy.length) out.push([start, c.greedy.length]);
  return out;
}

for (const model of fixtureModels) {
  test(`${model} in bf16: reference greedy token at every step with margin > ${MIN_MARGIN}`, async (t) => {
    const fx = fixturesOrSkip(t);
    if (!fx) return;
    const ref = readReference(fx, model);
    const s = await spawnPdserve(['serve', join(fx, 'models', model), '--max-num-batched-tokens', '1024', ...bf16ServeArgs()]);
    try {
      const jobs = ref.cases.flatMap((c, i) => confidentSegments(c).map(([a, b]) => ({ i, c, a, b })));
      let checked = 0;
      const misses: string[] = [];
      const results = await Promise.all(
        jobs.map(({ c, a, b }) =>
          postJson(`${s.url}/v1/completions`, {
            prompt: [...c.prompt, ...c.greedy.slice(0, a)],
            max_tokens: b - a,
            temperature: 0,
            ignore_eos: true,
            return_token_ids: true,
          }),
        ),
      );
      results.forEach((r, k) => {
        const { i, c, a, b } = jobs[k]!;
        assert.equal(r.status, 200, JSON.stringify(r.json));
        const got: number[] = r.json.choices[0].token_ids;
        checked += b - a;
        // the first differing token ends what this segment can show (later tokens follow a different prefix)
        const d = got.findIndex((id, j) => id !== c.greedy[a + j]);
        if (d >= 0) misses.push(`case ${i} step ${a + d} (margin ${c.greedy_margins[a + d]!.toFixed(3)}): got ${got[d]}, reference ${c.greedy[a + d]}`);
      });
      assert.ok(checked > 100, `${model}: only ${checked} steps checked`);
      assert.deepEqual(misses, [], `${model}: ${misses.length} segments differ from the reference (${checked} steps checked)`);
    } finally {
      await s.stop();
    }
  });
}
