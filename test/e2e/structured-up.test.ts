// Issue 13 acceptance 1 and 2 through P/D: `pdserve up pdserve-demo -- --enable-auto-tool-choice
// --tool-call-parser hermes` (1 prefiller + 1 decoder behind the proxy). The prefill leg gets the same
// constraint (its one token obeys it); the decoder samples the output under its own matcher.
import { test } from 'node:test';
import OpenAI from 'openai';
import { spawnUp } from '../helpers/spawn-up.js';
import { checkJsonSchema, checkToolCalls } from '../helpers/structured-checks.js';
import { checkResponsesTools } from '../helpers/responses-checks.js';

test('up pdserve-demo: tool_choice required / named, a JSON schema and /v1/responses tools through the proxy (openai SDK)', async () => {
  const up = await spawnUp(['pdserve-demo', '--prefill', '1', '--decode', '1', '--kv-pool-size', '256M', '--', '--enable-auto-tool-choice', '--tool-call-parser', 'hermes', '--max-model-len', '2048']);
  try {
    const client = new OpenAI({ baseURL: `${up.url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 120_000 });
    await checkToolCalls(client, 'pdserve-demo');
    await checkJsonSchema(client, 'pdserve-demo');
    await checkResponsesTools(client, 'pdserve-demo'); // /v1/responses with tools relayed with the same P/D legs
  } finally {
    await up.stop();
  }
});
