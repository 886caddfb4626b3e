import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { resolveModel } from '../models/resolve.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { TokenLogprob } from '../engine/protocol.js';
import { chatLogprobs, completionLogprobs, LogprobText } from './logprobs.js';

async function storiesTokenizer() {
  const m = await resolveModel(undefined, { loadFormat: 'auto' }); // stories260k: SentencePiece-style BPE
  return loadTokenizer({ tokenizerJsonPath: m.tokenizerJsonPath, tokenizerConfigPath: m.tokenizerConfigPath, generationConfig: m.generationConfig });
}

test('SentencePiece logprobs: tokens as they appear in the text, offsets index it, every candidate kept', async () => {
  const tok = await storiesTokenizer();
  const prompt = tok.encode('Once upon a time', { addSpecialTokens: true });
  const text = ', there was a little girl named Lily.';
  const gen = tok.encode('Once upon a time' + text, { addSpecialTokens: true }).slice(prompt.length);
  assert.equal(tok.decode(gen), text);
  const a = tok.encode('a', { addSpecialTokens: false }); // "▁a" (the prefix space is added)
  const bare = tok.encode('ba', { addSpecialTokens: false }).slice(-1); // "a" (no space)
  assert.equal(a.length, 1);
  assert.notEqual(a[0], bare[0]);
  // alone, "▁a" and "a" both decode to "a": that clash used to drop one of them from top_logprobs
  assert.equal(tok.decode(a), tok.decode(bare));
  const lps: TokenLogprob[] = gen.map((id) => ({ tokenId: id, logprob: -0.5, top: [{ tokenId: id, logprob: -0.5 }, { tokenId: a[0]!, logprob: -1 }, { tokenId: bare[0]!, logprob: -2 }] }));
  const out = completionLogprobs(new LogprobText(tok, prompt), lps, 0);
  assert.equal(out.tokens.join(''), text);
  out.text_offset.forEach((o, i) => assert.equal(text.slice(o, o + out.tokens[i]!.length), out.tokens[i]));
  assert.ok(out.tokens.some((t) => t.startsWith(' ')), 'leading spaces kept');
  for (const [i, d] of out.top_logprobs.entries()) {
    const distinct = new Set([gen[i], a[0], bare[0]]).size;
    assert.equal(Object.keys(d).length, distinct, `entry ${i}: ${JSON.stringify(d)}`);
  }
  // streamed in two chunks: the same tokens, offsets continue
  const t2 = new LogprobText(tok, prompt);
  const c1 = completionLogprobs(t2, lps.slice(0, 3), 0);
  const c2 = completionLogprobs(t2, lps.slice(3), c1.tokens.join('').length);
  assert.deepEqual([...c1.tokens, ...c2.tokens], out.tokens);
  assert.deepEqual([...c1.text_offset, ...c2.text_offset], out.text_offset);
  // chat uses the same texts
  const chat = chatLogprobs(new LogprobText(tok, prompt), lps);
  assert.deepEqual(chat.content.map((e) => e.token), out.tokens);
  assert.equal(chat.content[1]!.top_logprobs.length, 3);
});

test('a character split over byte-fallback tokens: "" until it completes, then the whole character', async () => {
  const tok = await storiesTokenizer();
  const prompt = tok.encode('Hi', { addSpecialTokens: true });
  const all = tok.encode('Hi 日本', { addSpecialTokens: true });
  const gen = all.slice(prompt.length);
  assert.ok(gen.length >= 3, 'CJK characters are byte tokens in a 512-token vocabulary');
  const out = completionLogprobs(new LogprobText(tok, prompt), gen.map((id) => ({ tokenId: id, logprob: -1, top: [] })), 0);
  assert.equal(out.tokens.join(''), ' 日本');
  assert.ok(out.tokens.includes('日') && out.tokens.includes(''), JSON.stringify(out.tokens));
});

test('return_tokens_as_token_ids: token_id:N', async () => {
  const tok = await storiesTokenizer();
  const out = completionLogprobs(new LogprobText(tok, [1], true), [{ tokenId: 5, logprob: -1, top: [{ tokenId: 6, logprob: -2 }] }], 0);
  assert.deepEqual(out.tokens, ['token_id:5']);
  assert.deepEqual(Object.keys(out.top_logprobs[0]!), ['token_id:5', 'token_id:6']);
});
