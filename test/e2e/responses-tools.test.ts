// Issue 13: /v1/responses with function tools, tool_choice, function_call_output and text.format against
// `pdserve serve pdserve-demo` (random weights; the grammar makes forced calls valid), streaming and not.
import { test } from 'node:test';
import OpenAI from 'openai';
import { spawnPdserve } from '../helpers/spawn-server.js';
import { checkResponsesTools } from '../helpers/responses-checks.js';

test('serve pdserve-demo: /v1/responses tools required / named, streamed events, tool outputs fed back (openai SDK)', async () => {
  const s = await spawnPdserve(['serve', 'pdserve-demo', '--enable-auto-tool-choice', '--tool-call-parser', 'hermes', '--max-model-len', '2048']);
  try {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 120_000 });
    await checkResponsesTools(client, 'pdserve-demo');
  } finally {
    await s.stop();
  }
});
