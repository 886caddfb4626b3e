// The bench's temporary tokenizer seam against the reference fixtures (encode and chat templates).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesOrSkip } from '../../test/helpers/fixtures.js';
import { loadBenchTokenizer } from './tokenizer-source.js';

test('cards and model dirs: encode and chat template match the references', async (t) => {
  const fx = fixturesOrSkip(t);
  if (!fx) return;
  const refs = JSON.parse(readFileSync(join(fx, 'tokenizers', 'references.json'), 'utf8'));
  for (const [key, arg] of [['qwen3', 'Qwen/Qwen3-0.6B'], ['llama3_1', 'llama-3.1-8b'], ['tiny-bpe', join(fx, 'models', 'qwen3-tiny')]] as const) {
    const tok = await loadBenchTokenizer(arg);
    for (const c of refs[key].encode.slice(0, 5)) assert.deepEqual(tok.encode(c.text, { addSpecialTokens: false }), c.ids, `${key}: ${c.text}`);
    for (const c of refs[key].chat) {
      assert.equal(tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt, tools: c.tools, chatTemplateKwargs: c.chat_template_kwargs }), c.text, key);
    }
  }
  await assert.rejects(loadBenchTokenizer('no-such-model'), /not a directory, a built-in card/);
});
