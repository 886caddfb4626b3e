import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixturesOrSkip } from '../../test/helpers/fixtures.js';
import { IncrementalDetokenizer } from './incremental-detokenizer.js';
import { fixtureTokenizer, packagedTokenizer } from './testing/test-tokenizers.js';
import type { Tokenizer } from './types.js';

const MIXED = 'emoji 🙂👍🏽 and ∑∫√ ©; 中文分词测试，還有日本語のテキスト。 naïve “quotes” 🙂🙂🙂 done.\n𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧑‍🤝‍🧑 ok';

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Streams ids in chunks of 1..maxChunk; returns the deltas (flush included as the last one). */
function stream(tok: Tokenizer, ids: number[], maxChunk: number, seed: number, opts = {}): string[] {
  const d = new IncrementalDetokenizer(tok, opts);
  const next = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < ids.length; ) {
    const n = 1 + Math.floor(next() * maxChunk);
    out.push(d.push(ids.slice(i, i + n)));
    i += n;
  }
  out.push(d.flush());
  return out;
}

function assertStreams(tok: Tokenizer, ids: number[], label: string) {
  const whole = tok.decode(ids, { skipSpecialTokens: true, cleanUpTokenizationSpaces: false });
  assert.ok(!whole.includes('\uFFFD'), `${label}: test text must be valid`);
  for (const [maxChunk, seed] of [[1, 1], [3, 2], [7, 3]] as const) {
    const deltas = stream(tok, ids, maxChunk, seed);
    assert.equal(deltas.join(''), whole, `${label} chunk<=${maxChunk}`);
    for (const d of deltas) assert.ok(!d.includes('\uFFFD'), `${label}: delta ${JSON.stringify(d)} has U+FFFD`);
  }
}

test('byte-level BPE (Qwen3, Llama-3.1): emoji/CJK split across tokens stream without U+FFFD', async () => {
  for (const name of ['qwen3', 'llama3_1'] as const) {
    const tok = await packagedTokenizer(name);
    const ids = tok.encode(MIXED, { addSpecialTokens: false });
    // the text really does split characters across tokens
    assert.ok(ids.some((id) => tok.decode([id]).includes('\uFFFD')), `${name} has a split character`);
    assertStreams(tok, ids, name);
  }
});

test('SentencePiece byte fallback (stories260K): split characters and leading-space handling', async (t) => {
  const fixtures = fixturesOrSkip(t);
  if (!fixtures) return;
  const tok = await fixtureTokenizer(fixtures, 'stories260K');
  const ids = tok.encode('Once upon a time café ☕ 你好 🙂 there was a dog.');
  assert.ok(ids.some((id) => /^<0x[0-9A-F]{2}>$/.test(tok.idToToken(id) ?? '')), 'uses byte-fallback tokens');
  assertStreams(tok, ids, 'stories260K');
  // With the prompt as left context the first generated word keeps its space, as in vLLM.
  const prompt = tok.encode('Once upon a');
  const time = tok.encode(' time', { addSpecialTokens: false }).slice(-1);
  assert.equal(new IncrementalDetokenizer(tok, { promptIds: prompt }).push(time), ' time');
  assert.equal(new IncrementalDetokenizer(tok).push(time), 'time');
});

test('special tokens are skipped by default and emitted when asked', async () => {
  const tok = await packagedTokenizer('qwen3');
  const ids = [...tok.encode('Hi there', { addSpecialTokens: false }), 151645];
  assert.equal(stream(tok, ids, 1, 9).join(''), 'Hi there');
  assert.equal(stream(tok, ids, 1, 9, { skipSpecialTokens: false }).join(''), 'Hi there<|im_end|>');
});

/** A byte tokenizer: each id stands for a fixed byte string; decode is UTF-8 with replacement. */
function byteTokenizer(table: number[][]): Tokenizer & { maxWindow: number } {
  const dec = new TextDecoder();
  const tok = {
    maxWindow: 0,
    vocabSize: table.length, bosTokenId: null, eosTokenIds: [], hasChatTemplate: false,
    encode: () => { throw new Error('unused'); },
    decode(ids: ArrayLike<number>) {
      tok.maxWindow = Math.max(tok.maxWindow, ids.length);
      return dec.decode(Uint8Array.from(Array.from(ids).flatMap((id) => table[id]!)));
    },
    applyChatTemplate: () => { throw new Error('unused'); },
    idToToken: () => undefined,
    isSpecial: () => false,
  };
  return tok;
}

test('tokens that each finish one character and start the next: clean text, bounded window', () => {
  // 😂 = F0 9F 98 82. Token 1 ends mid-character every time; token 2 completes the last one.
  const tok = byteTokenizer([[0xf0], [0x9f, 0x98, 0x82, 0xf0], [0x9f, 0x98, 0x82], [0x61]]);
  const ids = [3, 0, ...Array(200).fill(1), 2, 3];
  const d = new IncrementalDetokenizer(tok);
  const deltas = ids.map((id) => d.push([id]));
  deltas.push(d.flush());
  assert.equal(deltas.join(''), 'a' + '😂'.repeat(201) + 'a');
  for (const x of deltas) assert.ok(!x.includes('\uFFFD'));
  assert.ok(deltas.filter((x) => x.length > 0).length > 150, 'text flows while the tail stays incomplete');
  assert.ok(tok.maxWindow <= 24, `decode window stays short (max ${tok.maxWindow})`);
});

test('invalid bytes: held back while they may complete, then emitted as U+FFFD', () => {
  const tok = byteTokenizer([[0xf0], [0x9f], [0x61], [0xff]]);
  const d = new IncrementalDetokenizer(tok);
  assert.equal(d.push([2]), 'a');
  assert.equal(d.push([0]), '');
  assert.equal(d.push([1]), '');
  assert.equal(d.flush(), '\uFFFD');
  // a byte that can never start a character, followed by text: concatenation still equals decode(all)
  const ids = [2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 2];
  const d2 = new IncrementalDetokenizer(tok);
  const out = ids.map((id) => d2.push([id])).join('') + d2.flush();
  assert.equal(out, tok.decode(ids));
  // an endless run of invalid bytes is let through rather than held (window stays bounded)
  const junk = [2, ...Array(500).fill(3)];
  const d3 = new IncrementalDetokenizer(tok);
  const deltas = junk.map((id) => d3.push([id]));
  deltas.push(d3.flush());
  assert.ok(tok.maxWindow <= 40, `max window ${tok.maxWindow}`);
  assert.equal(deltas.join(''), tok.decode(junk));
  assert.ok(deltas.slice(0, 400).join('').length > 300);
});

test('a long stream decodes short windows only', async () => {
  const tok = await packagedTokenizer('qwen3');
  const ids = tok.encode(MIXED.repeat(20), { addSpecialTokens: false });
  let maxWindow = 0;
  const spy: Tokenizer = Object.assign(Object.create(tok), {
    decode(x: ArrayLike<number>, o?: { skipSpecialTokens?: boolean; cleanUpTokenizationSpaces?: boolean }) {
      maxWindow = Math.max(maxWindow, x.length);
      return tok.decode(x, o);
    },
  });
  const deltas = stream(spy, ids, 1, 5);
  assert.equal(deltas.join(''), tok.decode(ids));
  assert.ok(ids.length > 1000 && maxWindow <= 12, `max window ${maxWindow} of ${ids.length} tokens`);
});
