// Issue 11 acceptance 4: conditional disaggregation in `pdserve router` in front of a pdserve
// prefiller, decoder and kv-server (`pdserve up --router disaggregated_prefill`, decode policy
// prefixaware (the router's memory of what it routed) or kvaware (the decoder's own KV events; up wires
// them), --local-prefill-max-tokens 32). Every fixture case of llama3-tiny gives the reference
// tokens; short prompts (<= 32 tokens) and repeats of long ones (a full decoder prefix hit) skip the
// prefill leg, long first-time prompts take it; pdserve:router_disagg_decisions_total counts each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixturesOrSkip, readReference, comparableSteps } from '../helpers/fixtures.js';
import { postJson } from '../helpers/spawn-server.js';
import { spawnUp } from '../helpers/spawn-up.js';
import { PENDING_TTL_MS } from '../../src/gateway/policies/kv-aware.js';

const MODEL = 'llama3-tiny';
const T = 32;

const sample = (m: string, name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(m)?.[1] ?? NaN);

for (const policy of ['prefixaware', 'kvaware']) {
test(`router conditional disaggregation (decode policy ${policy}): short prompts and decoder prefix hits skip the prefill leg, long ones take it`, async (t) => {
  const fx = fixturesOrSkip(t);
  if (!fx) return;
  const ref = readReference(fx, MODEL);
  const up = await spawnUp([join(fx, 'models', MODEL), '--prefill', '1', '--decode', '1', '--kv-pool-size', '256M', '--router', 'disaggregated_prefill',
    '--proxy-flags', `--decode-policy ${policy} --local-prefill-max-tokens ${T}`]);
  try {
    if (policy === 'kvaware') await new Promise((r) => setTimeout(r, 500)); // the router's SUB sockets join before the first event
    const metrics = async () => (await (await fetch(`${up.url}/metrics`)).text());
    const expect = { remote: 0, local_short: 0, local_prefix_hit: 0 };
    const run = async (i: number, pass: string) => {
      const c = ref.cases[i]!;
      const r = await postJson(`${up.url}/v1/completions`, { prompt: c.prompt, max_tokens: c.greedy.length, temperature: 0, ignore_eos: true, return_token_ids: true });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const k = comparableSteps(c);
      assert.deepEqual(r.json.choices[0].token_ids.slice(0, k), c.greedy.slice(0, k), `${pass} case ${i} (${c.prompt.length} tokens)`);
      return r.json.usage.prompt_tokens_details?.cached_tokens ?? 0;
    };
    for (const [i, c] of ref.cases.entries()) {
      const m0 = await metrics();
      const cached = await run(i, 'first');
      const m1 = await metrics();
      const disagg = sample(m1, 'pdserve_proxy_requests_total{endpoint="/v1/completions",mode="disagg"}') - (sample(m0, 'pdserve_proxy_requests_total{endpoint="/v1/completions",mode="disagg"}') || 0);
      if (c.prompt.length <= T) {
        expect.local_short++;
        assert.equal(disagg || 0, 0, `case ${i}: short, no prefill leg`);
      } else {
        expect.remote++;
        assert.equal(disagg, 1, `case ${i}: long, prefilled remotely`);
        assert.ok(cached >= c.prompt.length - 1, `case ${i}: decoder cached_tokens ${cached} < ${c.prompt.length - 1}`);
      }
    }
    // the same long prompts again: the decoder holds them (it loaded their KV), so it prefills what is left itself.
    // kvaware: past PENDING_TTL_MS, so the hit can only come from the decoder's events, not from the router's routing memory
    if (policy === 'kvaware') await new Promise((r) => setTimeout(r, PENDING_TTL_MS + 300));
    for (const [i, c] of ref.cases.entries()) {
      if (c.prompt.length <= T) continue;
      const m0 = await metrics();
      const cached = await run(i, 'repeat');
      const m1 = await metrics();
      expect.local_prefix_hit++;
      assert.equal(sample(m1, 'pdserve_proxy_requests_total{endpoint="/v1/completions",mode="disagg"}'), sample(m0, 'pdserve_proxy_requests_total{endpoint="/v1/completions",mode="disagg"}'), `repeat case ${i}: no prefill leg`);
      assert.ok(cached >= c.prompt.length - 16, `repeat case ${i}: decoder cached_tokens ${cached} (prompt ${c.prompt.length})`);
    }
    const m = await metrics();
    for (const [d, n] of Object.entries(expect)) assert.equal(sample(m, `pdserve:router_disagg_decisions_total{decision="${d}"}`), n, `${d} decisions`);
    assert.ok(expect.local_short >= 2 && expect.remote >= 5);
    if (policy === 'kvaware') {
      const engines = (await (await fetch(`${up.url}/engines`)).json()) as { role: string; kv_events: { blocks: number } | null }[];
      assert.ok(engines.find((e) => e.role === 'decode')!.kv_events!.blocks > 0, 'the decoder\'s prefix hits came from its own KV events');
    }
  } finally {
    await up.stop();
  }
});
}
