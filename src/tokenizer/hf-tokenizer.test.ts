// The tokenizer against the oracle: HF tokenizers' encode/decode and transformers' chat-template renders
// (fixtures/tokenizers/references.json, stories260K tokenizer_cases, testdata/chat-oracle.json).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixturesOrSkip, readReference, repoRoot } from '../../test/helpers/fixtures.js';
import { PdsError } from '../util/errors.js';
import { loadTokenizer } from './load.js';
import { packagedTokenizerPaths } from './packaged.js';
import { fixtureTokenizer, packagedTokenizer } from './testing/test-tokenizers.js';
import { NoChatTemplateError, type ChatMessage, type Tokenizer } from './types.js';

interface EncodeCase { text: string; ids: number[]; decoded: string }
interface ChatCase { messages: ChatMessage[]; add_generation_prompt: boolean; text: string }
interface References { [name: string]: { encode: EncodeCase[]; chat: ChatCase[] } }

function references(fixtures: string): References {
  return JSON.parse(readFileSync(join(fixtures, 'tokenizers', 'references.json'), 'utf8'));
}

async function tokenizerFor(name: string, fixtures: string): Promise<Tokenizer> {
  if (name === 'qwen3' || name === 'llama3_1') return packagedTokenizer(name);
  return fixtureTokenizer(fixtures, 'qwen3-tiny');
}

for (const name of ['qwen3', 'llama3_1', 'tiny-bpe']) {
  test(`${name}: encode (no special tokens) and decode match HF tokenizers`, async (t) => {
    const fixtures = fixturesOrSkip(t);
    if (!fixtures) return;
    const tok = await tokenizerFor(name, fixtures);
    const cases = references(fixtures)[name]!.encode;
    assert.ok(cases.length > 10);
    for (const c of cases) {
      assert.deepEqual(tok.encode(c.text, { addSpecialTokens: false }), c.ids, `encode ${JSON.stringify(c.text)}`);
      assert.equal(tok.decode(c.ids), c.decoded, `decode ${JSON.stringify(c.text)}`);
    }
  });

  test(`${name}: chat template renders match transformers`, async (t) => {
    const fixtures = fixturesOrSkip(t);
    if (!fixtures) return;
    const tok = await tokenizerFor(name, fixtures);
    for (const c of references(fixtures)[name]!.chat) {
      const text = tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt });
      assert.equal(text, c.text);
    }
  });
}

test('chat options (tools, enable_thinking, tool calls, reasoning, content parts) match jinja2 as HF runs it', async () => {
  const oracle = JSON.parse(readFileSync(join(repoRoot, 'src/tokenizer/testdata/chat-oracle.json'), 'utf8')) as Array<{
    name: string; tokenizer: 'qwen3' | 'llama3_1'; messages: ChatMessage[]; tools: unknown[] | null;
    add_generation_prompt: boolean; chat_template_kwargs: Record<string, unknown> | null; text: string;
  }>;
  assert.ok(oracle.length >= 7);
  for (const c of oracle) {
    const tok = await packagedTokenizer(c.tokenizer);
    const text = tok.applyChatTemplate(c.messages, {
      addGenerationPrompt: c.add_generation_prompt,
      tools: c.tools ?? undefined,
      chatTemplateKwargs: c.chat_template_kwargs ?? undefined,
    });
    assert.equal(text, c.text, c.name);
  }
});

test('stories260K (SentencePiece BPE, byte fallback): encode with BOS and decode match llama2.c', async (t) => {
  const fixtures = fixturesOrSkip(t);
  if (!fixtures) return;
  const tok = await fixtureTokenizer(fixtures, 'stories260K');
  const cases = readReference(fixtures, 'stories260K').tokenizer_cases ?? [];
  assert.ok(cases.length > 3);
  for (const c of cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, `encode ${JSON.stringify(c.text)}`);
    assert.equal(tok.decode(c.ids, { skipSpecialTokens: true }), c.decoded);
  }
  assert.equal(tok.bosTokenId, 1);
  assert.deepEqual(tok.eosTokenIds, [2]);
  assert.equal(tok.vocabSize, 512);
  assert.equal(tok.hasChatTemplate, false);
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'hi' }]), NoChatTemplateError);
});

test('qwen3: special tokens, eos ids, vocab size, out-of-vocab ids', async () => {
  const tok = await packagedTokenizer('qwen3');
  assert.equal(tok.vocabSize, 151669); // 151643 BPE tokens + 26 added
  assert.equal(tok.bosTokenId, null);
  assert.deepEqual(tok.eosTokenIds, [151645]);
  assert.equal(tok.idToToken(151645), '<|im_end|>');
  assert.equal(tok.isSpecial(151645), true);
  assert.equal(tok.isSpecial(151667), false); // <think> is an added token but not special
  assert.equal(tok.isSpecial(9707), false);
  assert.deepEqual(tok.encode('Hello'), [9707]); // no BOS for Qwen
  assert.equal(tok.decode([9707, 151645]), 'Hello<|im_end|>');
  assert.equal(tok.decode([9707, 151645], { skipSpecialTokens: true }), 'Hello');
  // A model's embedding table is padded past the tokenizer (151936 rows): such ids decode to nothing.
  assert.equal(tok.decode([9707, 151900, -1, 1.5]), 'Hello');
  assert.equal(tok.decode([]), '');
});

test('llama3_1: BOS added by the post-processor, eos from tokenizer_config + generation_config', async () => {
  const paths = packagedTokenizerPaths('llama3_1');
  const tok = await loadTokenizer({ ...paths, generationConfig: { eos_token_id: [128001, 128008, 128009] } });
  assert.equal(tok.bosTokenId, 128000);
  assert.deepEqual(tok.eosTokenIds, [128009, 128001, 128008]);
  assert.deepEqual(tok.encode('Hello'), [128000, 9906]);
  assert.deepEqual(tok.encode('Hello', { addSpecialTokens: false }), [9906]);
  assert.equal(tok.vocabSize, 128256);
  // clean_up_tokenization_spaces is on in this tokenizer_config: HF decode removes " ." but streaming does not.
  const ids = tok.encode('a . b', { addSpecialTokens: false });
  assert.equal(tok.decode(ids), 'a. b');
  assert.equal(tok.decode(ids, { cleanUpTokenizationSpaces: false }), 'a . b');
});

test('missing or malformed tokenizer files are clear PDS_ERR_MODEL_LOAD errors', async () => {
  await assert.rejects(loadTokenizer({ tokenizerJsonPath: '/nonexistent/tokenizer.json', tokenizerConfigPath: null }), (e: unknown) =>
    e instanceof PdsError && e.code === 'PDS_ERR_MODEL_LOAD' && /\/nonexistent\/tokenizer\.json/.test(e.message) && /ENOENT/.test(e.message));
  const cfg = packagedTokenizerPaths('qwen3').tokenizerConfigPath;
  await assert.rejects(loadTokenizer({ tokenizerJsonPath: cfg, tokenizerConfigPath: null }), (e: unknown) =>
    e instanceof PdsError && e.code === 'PDS_ERR_MODEL_LOAD');
});

test('content parts other than text are rejected as bad requests', async () => {
  const tok = await packagedTokenizer('qwen3');
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: [{ type: 'image_url' }] }]), (e: unknown) =>
    e instanceof PdsError && e.code === 'PDS_ERR_BAD_REQUEST');
});

test("encode of a long prompt round-trips (timing printed, not asserted)", async (t) => {
  const tok = await packagedTokenizer('qwen3');
  const para = 'The quick brown fox jumps over the lazy dog; 数字 12345, naïve café — “quotes” 🙂. ';
  const text = para.repeat(Math.ceil((1.2 * 7500) / tok.encode(para, { addSpecialTokens: false }).length));
  const t0 = performance.now();
  const ids = tok.encode(text, { addSpecialTokens: false });
  const ms = performance.now() - t0;
  assert.ok(ids.length >= 7500);
  assert.equal(tok.decode(ids), text);
  t.diagnostic(`qwen3 encode of ${ids.length} tokens: ${ms.toFixed(1)} ms`);
});
