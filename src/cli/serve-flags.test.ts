// serve's flag tables against the configs they fill: every engine field has a flag (or says why not), every
// serve option belongs to exactly one table, defaults come from the configs, and resolve…Config() map the
// real commander parse (src/deploy/cli-parse.ts) to the configs serve used to build by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { engineConfigSchema, parseEngineConfig } from '../engine/config.js';
import { parsePdserveArgs, pdserveProgram } from '../deploy/cli-parse.js';
import { addEdgeOptions } from './edge-flags.js';
import { attributeOf, hasFlag, type FlagEntry } from './flag-table.js';
import { ENGINE_FLAGS, KV_FLAGS, SERVER_FLAGS, engineDefaults, resolveEngineConfig, resolveKvConfig, resolveServerConfig, serverDefaults } from './serve-flags.js';

const flagged = (t: Record<string, FlagEntry>) => Object.values(t).filter(hasFlag).map(attributeOf);

test('every EngineConfig field has an entry (a flag or the reason for none), and no entry names a missing field', () => {
  assert.deepEqual(Object.keys(ENGINE_FLAGS).sort(), Object.keys(engineConfigSchema.shape).sort());
  for (const [field, e] of Object.entries(ENGINE_FLAGS)) if (!hasFlag(e)) assert.ok(e.noFlag.length > 10, field);
});

test('every serve option belongs to exactly one table (engine, server, KV, edge) and every table flag is on serve', async () => {
  const { program } = await pdserveProgram();
  const serve = program.commands.find((c) => c.name() === 'serve')!;
  const onServe = new Set(serve.options.map((o) => o.attributeName()));
  const edge = addEdgeOptions(new Command(), '').options.map((o) => o.attributeName());
  const owners = [...flagged(ENGINE_FLAGS), ...flagged(SERVER_FLAGS), ...flagged(KV_FLAGS), ...edge];
  assert.equal(new Set(owners).size, owners.length, 'a flag claimed twice');
  assert.deepEqual([...onServe].filter((a) => !owners.includes(a)), [], 'serve options no table claims');
  assert.deepEqual(owners.filter((a) => !onServe.has(a)), [], 'table flags missing from serve');
});

test('defaults exist once: serve\'s engine defaults are the schema\'s, server defaults are serverDefaults', async () => {
  const { program } = await pdserveProgram();
  const serve = program.commands.find((c) => c.name() === 'serve')!;
  const byAttr = new Map(serve.options.filter((o) => !o.negate).map((o) => [o.attributeName(), o.defaultValue]));
  for (const [field, e] of Object.entries(ENGINE_FLAGS))
    if (hasFlag(e)) assert.deepEqual(byAttr.get(attributeOf(e)), engineDefaults[field as keyof typeof engineDefaults], field);
  for (const [field, e] of Object.entries(SERVER_FLAGS))
    if (hasFlag(e)) assert.deepEqual(byAttr.get(attributeOf(e)), serverDefaults[field as keyof typeof serverDefaults], field);
  const p = await parsePdserveArgs(['serve']);
  assert.deepEqual(parseEngineConfig(resolveEngineConfig(p.opts)), parseEngineConfig({}));
});

test('resolveEngineConfig: flag names and conversions to fields', async () => {
  const p = await parsePdserveArgs(['serve', 'm', '--dtype', 'bfloat16', '--kv-cache-dtype', 'float32', '--kv-cache-memory', '2G',
    '--no-enable-prefix-caching', '--block-size', '32', '--device', 'cuda:1', '--max-model-len', '4096', '--seed', '-3']);
  assert.deepEqual(resolveEngineConfig(p.opts), {
    weightDtype: 'bf16', device: 'cuda:1', threads: 0, blockSize: 32, maxNumBatchedTokens: 2048, maxNumSeqs: 64, maxModelLen: 4096,
    enablePrefixCaching: false, kvCacheDtype: 'f32', kvCacheMemory: 2 * 2 ** 30, gpuMemoryUtilization: 0.9, seed: -3,
  });
  await assert.rejects(parsePdserveArgs(['serve', '--block-size', '0']), /--block-size must be an integer >= 1/);
});

test('resolveServerConfig: derived deadlines, the inline tokenizer at 0 workers, and the checks commander cannot make', async () => {
  const d = resolveServerConfig((await parsePdserveArgs(['serve'])).opts);
  assert.deepEqual(d, {
    host: '127.0.0.1', port: 8000, servedModelName: undefined, generationConfig: 'auto', loadFormat: 'auto', accessLog: false,
    tokenizerPool: { size: 2, maxQueue: 1024, deadlineMs: 10_000 }, grammar: { compileTimeoutMs: 10_000 },
    tools: { enableAutoToolChoice: false, toolCallParser: null },
  });
  const s = resolveServerConfig((await parsePdserveArgs(['serve', '--tokenizer-pool-size', '0', '--grammar-compile-timeout', '2.5', '--served-model-name', 'a', 'b', '--access-log'])).opts);
  assert.equal(s.tokenizerPool, null);
  assert.equal(s.grammar.compileTimeoutMs, 2500);
  assert.deepEqual(s.servedModelName, ['a', 'b']);
  assert.equal(s.accessLog, true);
  assert.throws(() => resolveServerConfig({ loadFormat: 'gguf' }), /--load-format must be auto, safetensors or dummy \(got gguf\)/);
  assert.throws(() => resolveServerConfig({ toolCallParser: 'nope' }), /--tool-call-parser: unknown parser 'nope'/);
  assert.throws(() => resolveServerConfig({ enableAutoToolChoice: true }), /--enable-auto-tool-choice requires --tool-call-parser/);
});

test('resolveKvConfig: the YAML path is an argument, allowlists accumulate, JSON configs are parsed', async () => {
  const p = await parsePdserveArgs(['serve', '--kv-config', '/tmp/kv.yaml', '--kv-peer-allowlist', '10.0.0.1:1,10.0.0.2:2', '--kv-peer-allowlist', '10.0.0.3:3',
    '--kv-transfer-config', '{"kv_connector":"PdConnector","kv_role":"kv_producer"}']);
  const kv = resolveKvConfig(p.opts);
  assert.equal(kv.kvConfigFile, '/tmp/kv.yaml');
  assert.deepEqual(kv.peerAllowlist, ['10.0.0.1:1', '10.0.0.2:2', '10.0.0.3:3']);
  assert.equal(kv.kvTransferConfig?.kv_role, 'kv_producer');
  assert.equal(kv.kvEvents, null);
  assert.deepEqual(resolveKvConfig((await parsePdserveArgs(['serve'])).opts), { kvTransferConfig: undefined, kvEvents: null, kvEventsPlaintext: false, kvConfigFile: null, peerAllowlist: [] });
});

test('up: its KV chunk size defaults to the KV config schema\'s, its engine flags pass through without defaults', async () => {
  const { registerUp } = await import('./up.js');
  const { kvConfigSchema } = await import('../kv/config.js');
  const p = new Command();
  registerUp(p);
  const up = p.commands.find((c) => c.name() === 'up')!;
  const opt = (a: string) => up.options.find((o) => o.attributeName() === a)!;
  assert.equal(opt('chunkSize').defaultValue, kvConfigSchema.parse({}).chunk_size);
  for (const a of ['device', 'loadFormat']) assert.equal(opt(a).defaultValue, undefined, `${a}: the engine's default applies`);
});
