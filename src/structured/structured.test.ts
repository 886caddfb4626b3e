// xgrammar in Node: vocab detection on the two shipped tokenizer kinds, worker-proven compilation with
// 400s naming the field, the compile cache, matchers whose masks only admit grammatical continuations,
// and EOS only where the grammar may end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cardsDir } from '../models/cards.js';
import { packagedTokenizerPaths } from '../tokenizer/packaged.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { PdsError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { grammarVocabFromTokenizerJson } from './vocab.js';
import { createGrammarService } from './create.js';
import { applyBitmask, bitmaskAllows } from './apply-bitmask.js';
import type { GrammarService } from './grammar-service.js';
import type { GrammarSpec } from './grammar-spec.js';

const storiesJson = join(cardsDir(), 'stories260k', 'tokenizer.json');
const qwen = packagedTokenizerPaths('qwen3');

test('vocab type: stories260k is SentencePiece byte_fallback with a dummy prefix; Qwen3 is byte-level BPE', () => {
  const s = grammarVocabFromTokenizerJson(JSON.parse(readFileSync(storiesJson, 'utf8')));
  assert.equal(s.vocabType, 'byte_fallback');
  assert.equal(s.prependSpace, true);
  assert.equal(s.encodedVocab.length, 512);
  assert.equal(s.encodedVocab[2], '</s>');
  const q = grammarVocabFromTokenizerJson(JSON.parse(readFileSync(qwen.tokenizerJsonPath, 'utf8')));
  assert.equal(q.vocabType, 'byte_level');
  assert.equal(q.prependSpace, false);
  assert.equal(q.encodedVocab[151645], '<|im_end|>');
  assert.ok(q.encodedVocab.every((t) => typeof t === 'string'));
});

/** Samples uniformly among the allowed ids until the grammar ends (EOS accepted) or `max` tokens. */
async function walk(g: GrammarService, spec: GrammarSpec, eos: number, seed: number, max = 300): Promise<{ ids: number[]; terminated: boolean }> {
  const m = await g.matcher(spec, 'test');
  const rng = new Rng(seed);
  const ids: number[] = [];
  try {
    for (let i = 0; i < max && !m.isTerminated(); i++) {
      await m.prepare();
      const allowed: number[] = [];
      for (let id = 0; id < g.vocabSize; id++) if (bitmaskAllows(m.mask, id)) allowed.push(id);
      assert.ok(allowed.length > 0, 'some token is always allowed before the end');
      // prefer ending when possible half of the time, so walks terminate
      const pick = allowed.includes(eos) && rng.random() < 0.5 ? eos : allowed[Math.floor(rng.random() * allowed.length)]!;
      assert.equal(m.accept(pick), true);
      if (pick !== eos) ids.push(pick);
    }
    return { ids, terminated: m.isTerminated() };
  } finally {
    m.dispose();
  }
}

test('stories260k: choice, regex and JSON schema walks yield only grammatical text; EOS only at the end', async () => {
  const tok = await loadTokenizer({ tokenizerJsonPath: storiesJson, tokenizerConfigPath: join(cardsDir(), 'stories260k', 'tokenizer_config.json') });
  const g = await createGrammarService(storiesJson, 512, [2]);
  try {
    for (let seed = 1; seed <= 5; seed++) {
      const c = await walk(g, { kind: 'choice', choices: ['happy', 'sad dog', 'a "quoted" one'] }, 2, seed);
      assert.ok(c.terminated);
      assert.ok(['happy', 'sad dog', 'a "quoted" one'].includes(tok.decode(c.ids)), tok.decode(c.ids));
      const r = await walk(g, { kind: 'regex', pattern: '[a-z]{1,6} (cat|dog)\\.' }, 2, seed);
      assert.ok(r.terminated);
      assert.match(tok.decode(r.ids), /^[a-z]{1,6} (cat|dog)\.$/);
      const schema = { type: 'object', properties: { mood: { enum: ['up', 'down'] }, ok: { type: 'boolean' }, n: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['mood', 'ok', 'n'] };
      const j = await walk(g, { kind: 'json_schema', schema: JSON.stringify(schema), anyWhitespace: false }, 2, seed);
      assert.ok(j.terminated);
      const v = JSON.parse(tok.decode(j.ids));
      assert.ok(['up', 'down'].includes(v.mood) && typeof v.ok === 'boolean' && Number.isInteger(v.n) && v.n >= 0 && v.n <= 99, JSON.stringify(v));
    }
    // EOS is masked until the grammar may end
    const m = await g.matcher({ kind: 'choice', choices: ['happy'] }, 'p');
    await m.prepare();
    assert.equal(bitmaskAllows(m.mask, 2), false);
    m.dispose();
  } finally {
    await g.close();
  }
});

test('pdserve-demo (Qwen3 vocabulary, 151936 logits): JSON schema walk decodes to valid JSON', async () => {
  const tok = await loadTokenizer({ tokenizerJsonPath: qwen.tokenizerJsonPath, tokenizerConfigPath: qwen.tokenizerConfigPath });
  const eos = tok.eosTokenIds[0]!;
  const g = await createGrammarService(qwen.tokenizerJsonPath, 151936, tok.eosTokenIds);
  try {
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 4 }, tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 2 } }, required: ['name', 'tags'] };
    const j = await walk(g, { kind: 'json_schema', schema: JSON.stringify(schema), anyWhitespace: false }, eos, 7, 200);
    assert.ok(j.terminated);
    const v = JSON.parse(tok.decode(j.ids));
    assert.equal(typeof v.name, 'string');
    assert.ok(Array.isArray(v.tags) && v.tags.length <= 2);
  } finally {
    await g.close();
  }
});

test('invalid specs are 400s naming the field; the service keeps working after them; specs are cached', async () => {
  const g = await createGrammarService(storiesJson, 512, [2]);
  try {
    const bad: Array<[GrammarSpec, RegExp]> = [
      [{ kind: 'grammar', ebnf: 'root ::= ' }, /EBNF|Expect/],
      [{ kind: 'json_schema', schema: '{"type":"objekt"}', anyWhitespace: true }, /objekt/],
      [{ kind: 'regex', pattern: '[a-z' }, /./],
    ];
    for (const [spec, msg] of bad) {
      await assert.rejects(g.compile(spec, 'guided_x'), (e: unknown) => e instanceof PdsError && e.httpStatus === 400 && e.param === 'guided_x' && msg.test(e.message));
    }
    const spec: GrammarSpec = { kind: 'choice', choices: ['yes', 'no'] };
    const a = await g.compile(spec, 'p');
    const b = await g.compile({ kind: 'choice', choices: ['yes', 'no'] }, 'p');
    assert.equal(a, b, 'the same spec compiles once');
    const w = await walk(g, spec, 2, 3);
    assert.ok(w.terminated);
  } finally {
    await g.close();
  }
});

test('a compile past its deadline is a 400 (the worker is replaced)', async () => {
  const g = await createGrammarService(storiesJson, 512, [2], { compileTimeoutMs: 1 });
  try {
    const big = { type: 'object', properties: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, { type: 'string' }])) };
    await assert.rejects(g.compile({ kind: 'json_schema', schema: JSON.stringify(big), anyWhitespace: true }, 'guided_json'), /longer than 1 ms/);
  } finally {
    await g.close();
  }
});

test('applyBitmask: disallowed ids become -inf, allowed ones keep their value', () => {
  const row = Float32Array.from({ length: 70 }, (_, i) => i);
  const mask = new Int32Array(3);
  mask[0] = (1 << 3) | (1 << 31);
  mask[1] = -1;
  mask[2] = 1 << 5; // id 69
  applyBitmask(row, mask);
  for (let i = 0; i < 70; i++) {
    const allowed = i === 3 || i === 31 || (i >= 32 && i < 64) || i === 69;
    assert.equal(row[i], allowed ? i : -Infinity, `id ${i}`);
  }
});

test('one compile per spec: the worker only checks (parses) it, the main thread compiles its normalized EBNF once', async () => {
  const g = await createGrammarService(storiesJson, 512, [2]);
  try {
    const spec: GrammarSpec = { kind: 'json_schema', schema: JSON.stringify({ type: 'object', properties: { a: { type: 'integer' } } }), anyWhitespace: false };
    assert.equal(g.compiles, 0);
    const ms = await Promise.all([g.matcher(spec, 'p'), g.matcher(spec, 'p'), g.matcher({ ...spec }, 'p')]);
    for (const m of ms) m.dispose();
    assert.equal(g.compiles, 1, 'three matchers of one spec (concurrent, then cached): one compile');
    await g.compile({ kind: 'regex', pattern: 'x+' }, 'p');
    assert.equal(g.compiles, 2);
    await assert.rejects(g.compile({ kind: 'grammar', ebnf: 'root ::= (' }, 'p'), PdsError);
    assert.equal(g.compiles, 2, 'an invalid spec never reaches the main thread');
  } finally {
    await g.close();
  }
});

test('a grammar larger than maxGrammarChars is a 400 before any compile', async () => {
  const g = await createGrammarService(storiesJson, 512, [2], { maxGrammarChars: 200 });
  try {
    const big = { type: 'object', properties: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, { type: 'string' }])) };
    await assert.rejects(g.compile({ kind: 'json_schema', schema: JSON.stringify(big), anyWhitespace: false }, 'guided_json'),
      (e: unknown) => e instanceof PdsError && e.httpStatus === 400 && e.param === 'guided_json' && /too large/.test(e.message));
    assert.equal(g.compiles, 0);
    await g.compile({ kind: 'choice', choices: ['a'] }, 'p');
    assert.equal(g.compiles, 1);
  } finally {
    await g.close();
  }
});
