// The reference for disaggregated runs: one engine alone (`pdserve serve ARGS`) answers each prompt
// greedily; its token ids are what 1P1D must give.
import assert from 'node:assert/strict';
import { postJson, spawnPdserve } from './spawn-server.js';

/** Greedy token ids of `prompts` (max `maxTokens` each, ignore_eos) from a fresh `pdserve serve ...args`. */
export async function singleEngineGreedy(prompts: string[], maxTokens: number, opts: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<number[][]> {
  const single = await spawnPdserve(['serve', ...(opts.args ?? [])], opts.env ? { env: opts.env } : {});
  try {
    const out: number[][] = [];
    for (const prompt of prompts) {
      const r = await postJson(`${single.url}/v1/completions`, { prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, return_token_ids: true });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      out.push(r.json.choices[0].token_ids);
    }
    return out;
  } finally {
    await single.stop();
  }
}
