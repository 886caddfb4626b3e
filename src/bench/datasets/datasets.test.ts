// Workloads: exact prompt lengths after decode/re-encode, shared prefixes, determinism, file formats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBenchTokenizer } from '../tokenizer-source.js';
import { fixturesOrSkip } from '../../../test/helpers/fixtures.js';
import { sampleRandom } from './random.js';
import { sampleRandomParallel } from './random-parallel.js';
import { samplePrefixRepetition } from './prefix-repetition.js';
import { sampleCustom, sampleShareGpt } from './file-datasets.js';

const tokP = loadBenchTokenizer('llama-3.1-8b'); // built-in card (ships in node_modules)

test('random: lengths in range, prompt_len = re-encoded length, shared prefix, same seed -> same prompts', async () => {
  const tok = await tokP;
  const o = { numRequests: 20, inputLen: 65, outputLen: 16, rangeRatio: 0.5, prefixLen: 8, seed: 5 };
  const a = sampleRandom(tok, o);
  assert.deepEqual(sampleRandom(tok, o), a);
  assert.notDeepEqual(sampleRandom(tok, { ...o, seed: 6 }).requests, a.requests);
  // input_len excludes the BOS the tokenizer adds: [floor(64*.5), ceil(64*1.5)] + prefix 8
  for (const r of a.requests) {
    assert.equal(tok.encode(r.prompt, { addSpecialTokens: false }).length, r.promptLen);
    assert.ok(r.promptLen >= 8 + 32 - 2 && r.promptLen <= 8 + 96 + 2, String(r.promptLen));
    assert.ok(r.expectedOutputLen >= 8 && r.expectedOutputLen <= 24);
  }
  const prefixes = a.requests.map((r) => tok.encode(r.prompt, { addSpecialTokens: false }).slice(0, 6).join(','));
  assert.equal(new Set(prefixes).size, 1, 'all prompts start with the same prefix tokens');
  const fixed = sampleRandom(tok, { ...o, rangeRatio: 0, prefixLen: 0 });
  for (const r of fixed.requests) assert.equal(r.expectedOutputLen, 16);
});

test('random on worker threads builds exactly the same prompts', async (t) => {
  const fx = fixturesOrSkip(t);
  if (!fx) return;
  const dir = join(fx, 'models', 'stories260K'); // small vocabulary: loads in milliseconds per thread
  const tok = await loadBenchTokenizer(dir);
  const o = { numRequests: 40, inputLen: 48, outputLen: 8, rangeRatio: 0.25, prefixLen: 4, seed: 9 };
  assert.deepEqual(await sampleRandomParallel(tok, dir, o, 0), sampleRandom(tok, o));
});

test('prefix_repetition: num_prefixes groups of exact-length prompts, shuffled deterministically', async () => {
  const tok = await tokP;
  const o = { numRequests: 12, prefixLen: 16, suffixLen: 8, numPrefixes: 3, outputLen: 4, seed: 1, shuffle: true };
  const { requests } = samplePrefixRepetition(tok, o);
  assert.equal(requests.length, 12);
  assert.deepEqual(samplePrefixRepetition(tok, o).requests, requests);
  const heads = new Map<string, number>();
  for (const r of requests) {
    assert.equal(r.promptLen, 24);
    const h = tok.encode(r.prompt, { addSpecialTokens: false }).slice(0, 10).join(',');
    heads.set(h, (heads.get(h) ?? 0) + 1);
  }
  assert.deepEqual([...heads.values()].sort(), [4, 4, 4]);
  assert.throws(() => samplePrefixRepetition(tok, { ...o, numRequests: 2 }), /must be >=/);
});

test('sharegpt and custom files', async () => {
  const tok = await tokP;
  const dir = mkdtempSync(join(tmpdir(), 'pds-ds-'));
  const sg = join(dir, 'sg.json');
  writeFileSync(sg, JSON.stringify([
    { conversations: [{ from: 'human', value: 'Tell me a story about a cat and a dog.' }, { from: 'gpt', value: 'Once upon a time a cat met a dog and they became friends.' }] },
    { conversations: [{ from: 'human', value: 'only one turn' }] },
    { conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello there, friend of mine.' }] }, // prompt < 4 tokens: dropped
  ]));
  const s = sampleShareGpt(tok, { path: sg, numRequests: 3, seed: 0, shuffle: true, outputLen: null });
  assert.equal(s.length, 3); // one valid conversation, oversampled to 3
  assert.equal(s[0]!.prompt, 'Tell me a story about a cat and a dog.');
  assert.equal(s[0]!.expectedOutputLen, tok.encode('Once upon a time a cat met a dog and they became friends.').length);
  const cj = join(dir, 'c.jsonl');
  writeFileSync(cj, '{"prompt": "a b c", "output_tokens": 7}\n\n{"prompt": "d e f"}\n');
  const c = sampleCustom(tok, { path: cj, numRequests: 2, seed: 0, shuffle: false, outputLen: 256, applyChatTemplate: false });
  assert.deepEqual(c.map((r) => [r.prompt, r.expectedOutputLen]), [['a b c', 7], ['d e f', 256]]);
  writeFileSync(cj, '{"prompt": 3}\n');
  assert.throws(() => sampleCustom(tok, { path: cj, numRequests: 1, seed: 0, shuffle: false, outputLen: 1, applyChatTemplate: false }), /line 1: needs a string "prompt"/);
});
