// `pdserve serve`'s flags in three tables, each typed against the config it fills, and one resolve…Config()
// per table that turns parsed options into that config (derived values computed here, once):
//   ENGINE_FLAGS -> EngineConfigInput (src/engine/config.ts; defaults: engineConfigSchema)  resolveEngineConfig
//   SERVER_FLAGS -> ServeServerInput (API server, tokenizer pool, grammar)                  resolveServerConfig
//   KV_FLAGS     -> ServeKvInput (connector, KV events; KV fields come from the --kv-config YAML)  resolveKvConfig
// The listener's credentials and limits are edge-flags.ts (shared with proxy). Derivations that need the
// loaded model (KV dtype, max model len, block count) are engine/kv-cache-config.ts (resolveKvCacheConfig).
import { engineConfigSchema, type EngineConfigInput } from '../engine/config.js';
import { parseKvTransferConfig } from '../engine/connector/transfer-config.js';
import type { KvTransferConfig } from '../engine/connector/types.js';
import { parseKvEventsConfig, type KvEventsConfig } from '../kv-events/config.js';
import type { LoadFormat } from '../models/types.js';
import type { ToolSettings } from '../server/tools/tool-plan.js';
import { defaultCompileTimeoutMs } from '../structured/grammar-service.js';
import type { TokenizerPoolOptions } from '../tokenizer/worker-pool.js';
import { getToolParser, toolParserNames } from '../tools/parsers/registry.js';
import { parseDtypeOption } from '../util/dtype.js';
import { PdsError } from '../util/errors.js';
import { parseSize } from '../util/size.js';
import { addFlags, fieldsFrom, type FlagTable } from './flag-table.js';
import { intOption, numOption } from './flags.js';
import type { Command } from 'commander';

const dtype = parseDtypeOption;

// ---- engine ----

/** The engine's defaults, from its schema only (fields without a default are absent). */
export const engineDefaults: Readonly<EngineConfigInput> = engineConfigSchema.parse({});

export const ENGINE_FLAGS: FlagTable<EngineConfigInput> = {
  weightDtype: { flags: '--dtype <dtype>', help: 'weight dtype: auto | float32 | float16 | bfloat16', parse: dtype },
  device: { flags: '--device <device>', help: 'cpu | cuda | cuda:N' },
  threads: { flags: '--threads <n>', help: 'CPU threads (0 = all cores)', parse: intOption('--threads', 0) },
  blockSize: { flags: '--block-size <n>', help: 'tokens per KV block', parse: intOption('--block-size', 1) },
  maxNumBatchedTokens: { flags: '--max-num-batched-tokens <n>', help: 'token budget of one step (chunked prefill)', parse: intOption('--max-num-batched-tokens', 1) },
  maxNumSeqs: { flags: '--max-num-seqs <n>', help: 'max sequences in a batch', parse: intOption('--max-num-seqs', 1) },
  maxModelLen: { flags: '--max-model-len <n>', help: 'max prompt + output tokens (default: the model\'s)', parse: intOption('--max-model-len', 1) },
  enablePrefixCaching: { flags: '--enable-prefix-caching', help: 'reuse KV of shared prefixes (default on)', negate: 'disable prefix caching' },
  kvCacheDtype: { flags: '--kv-cache-dtype <dtype>', help: 'auto (f32 on CPU, the model dtype on GPU) | float32 | float16 | bfloat16; on GPU, float32 with bf16/f16 weights computes in f32 (closest to an fp32 reference; slower prefill)', parse: dtype },
  kvCacheMemory: { flags: '--kv-cache-memory <size>', help: 'KV pool size, e.g. 2G (default: a fraction of free memory)', toField: (v: string) => parseSize(v) },
  gpuMemoryUtilization: { flags: '--gpu-memory-utilization <f>', help: 'fraction of free GPU memory for the KV pool', parse: numOption('--gpu-memory-utilization') },
  cpuKvFraction: { noFlag: 'cpu: the KV pool\'s share of MemAvailable; --kv-cache-memory sets the pool size instead' },
  seed: { flags: '--seed <n>', help: 'seed for dummy weights and unseeded sampling', parse: intOption('--seed') },
};

/** The engine config serve's parsed options describe (createEngine validates it with the schema). */
export function resolveEngineConfig(o: Record<string, unknown>): EngineConfigInput {
  return fieldsFrom(ENGINE_FLAGS, o);
}

// ---- API server, tokenizer pool, grammar service ----

/** What serve's own flags set besides the engine and the KV layer (flag-shaped; see resolveServerConfig). */
export interface ServeServerInput {
  host: string;
  port: number;
  servedModelName?: string[];
  generationConfig: string;
  loadFormat: string;
  accessLog: boolean;
  tokenizerPoolSize: number;
  tokenizerQueue: number;
  tokenizationTimeout: number; // s
  enableAutoToolChoice: boolean;
  toolCallParser?: string;
  grammarCompileTimeout: number; // s
}

/** The one place serve's server defaults are written (the grammar deadline is grammar-service's). */
export const serverDefaults: Readonly<Omit<ServeServerInput, 'servedModelName' | 'toolCallParser'>> = {
  host: '127.0.0.1',
  port: 8000,
  generationConfig: 'auto',
  loadFormat: 'auto',
  accessLog: false,
  tokenizerPoolSize: 2,
  tokenizerQueue: 1024,
  tokenizationTimeout: 10,
  enableAutoToolChoice: false,
  grammarCompileTimeout: defaultCompileTimeoutMs / 1000,
};

export const SERVER_FLAGS: FlagTable<ServeServerInput> = {
  host: { flags: '--host <host>', help: 'interface to listen on (0.0.0.0 = all; then set --api-key)' },
  port: { flags: '--port <port>', help: 'port to listen on', parse: intOption('--port', 0) },
  servedModelName: { flags: '--served-model-name <names...>', help: 'model name(s) in the API; the first is reported in responses (default: the model argument as given)' },
  generationConfig: { flags: '--generation-config <mode>', help: 'sampling defaults: auto (the model\'s generation_config.json) | vllm (none) | a folder with generation_config.json' },
  loadFormat: { flags: '--load-format <fmt>', help: 'auto | safetensors | dummy (random weights)' },
  accessLog: { flags: '--access-log', help: 'log one line per HTTP response', negate: 'no per-response log lines (the default; the chart renders engineConfig.accessLog: false as this)' },
  tokenizerPoolSize: { flags: '--tokenizer-pool-size <n>', help: 'tokenizer worker threads (0 = tokenize on the event loop)', parse: intOption('--tokenizer-pool-size', 0) },
  tokenizerQueue: { flags: '--tokenizer-queue <n>', help: 'requests waiting for a tokenizer worker beyond which clients get 429', parse: intOption('--tokenizer-queue', 1) },
  tokenizationTimeout: { flags: '--tokenization-timeout <s>', help: 'a prompt that takes longer to tokenize gets a 400', parse: numOption('--tokenization-timeout', 0.1) },
  enableAutoToolChoice: { flags: '--enable-auto-tool-choice', help: 'tool_choice "auto": parse tool calls out of the model\'s text (needs --tool-call-parser)' },
  toolCallParser: { flags: '--tool-call-parser <name>', help: `tool-call format of the model: ${toolParserNames().join(' | ')}` },
  grammarCompileTimeout: { flags: '--grammar-compile-timeout <s>', help: 'structured output: a grammar that takes longer to compile gets a 400', parse: numOption('--grammar-compile-timeout', 0.1) },
};

export interface ServeServerConfig {
  host: string;
  port: number;
  servedModelName: string[] | undefined; // undefined: the model's resolved name
  generationConfig: string;
  loadFormat: LoadFormat;
  accessLog: boolean;
  /** null: tokenize inline on the event loop */
  tokenizerPool: Omit<TokenizerPoolOptions, 'load'> | null;
  grammar: { compileTimeoutMs: number };
  tools: ToolSettings;
}

/** Checks the server flags that commander cannot (throws PdsError PDS_ERR_CONFIG) and derives the rest. */
export function resolveServerConfig(o: Record<string, unknown>): ServeServerConfig {
  const f = { ...serverDefaults, ...fieldsFrom(SERVER_FLAGS, o) } as ServeServerInput;
  if (!['auto', 'safetensors', 'dummy'].includes(f.loadFormat)) throw new PdsError('PDS_ERR_CONFIG', `--load-format must be auto, safetensors or dummy (got ${f.loadFormat})`);
  if (f.toolCallParser && !getToolParser(f.toolCallParser)) throw new PdsError('PDS_ERR_CONFIG', `--tool-call-parser: unknown parser '${f.toolCallParser}' (${toolParserNames().join(', ')})`);
  if (f.enableAutoToolChoice && !f.toolCallParser) throw new PdsError('PDS_ERR_CONFIG', '--enable-auto-tool-choice requires --tool-call-parser');
  return {
    host: f.host,
    port: f.port,
    servedModelName: f.servedModelName,
    generationConfig: f.generationConfig,
    loadFormat: f.loadFormat as LoadFormat,
    accessLog: f.accessLog,
    tokenizerPool: f.tokenizerPoolSize > 0 ? { size: f.tokenizerPoolSize, maxQueue: f.tokenizerQueue, deadlineMs: f.tokenizationTimeout * 1000 } : null,
    grammar: { compileTimeoutMs: f.grammarCompileTimeout * 1000 },
    tools: { enableAutoToolChoice: !!f.enableAutoToolChoice, toolCallParser: f.toolCallParser ?? null },
  };
}

// ---- KV layer (connector, events) ----

export interface ServeKvInput {
  kvTransferConfig?: string; // JSON
  kvEventsConfig?: string; // JSON
  kvEventsPlaintext?: boolean;
  kvConfig?: string; // YAML file path
  kvPeerAllowlist: string[];
}

export const KV_FLAGS: FlagTable<ServeKvInput> = {
  kvTransferConfig: { flags: '--kv-transfer-config <json>', help: 'vLLM-style KV connector config, e.g. {"kv_connector":"PdConnector","kv_role":"kv_producer"}' },
  kvEventsConfig: { flags: '--kv-events-config <json>', help: 'vLLM KVEventsConfig: {"enable_kv_cache_events":true,"publisher":"zmq","endpoint":"tcp://127.0.0.1:5557"} (default endpoint: loopback; CurveZMQ keyed from the internal secret when one is set)' },
  kvEventsPlaintext: { flags: '--kv-events-plaintext', help: 'publish KV events without CurveZMQ even with an internal secret (for vLLM collectors and routers)' },
  kvConfig: { flags: '--kv-config <file>', help: 'KV layer YAML (LMCache field names); also PDSERVE_KV_CONFIG_FILE' },
  kvPeerAllowlist: {
    flags: '--kv-peer-allowlist <host:port>',
    help: 'peers a decoder may contact for point-to-point KV (repeatable or comma list; default: loopback hosts)',
    parse: (v: string, prev: string[]) => [...prev, ...v.split(',').map((x) => x.trim()).filter(Boolean)],
    initial: [],
  },
};

export interface ServeKvConfig {
  kvTransferConfig: KvTransferConfig | undefined;
  kvEvents: KvEventsConfig | null;
  /** publish KV events in plaintext even with an internal secret */
  kvEventsPlaintext: boolean;
  /** the KV layer YAML, handed to the connector factory as an argument (null: env or defaults) */
  kvConfigFile: string | null;
  peerAllowlist: string[];
}

export function resolveKvConfig(o: Record<string, unknown>): ServeKvConfig {
  const f = fieldsFrom(KV_FLAGS, o);
  return {
    kvTransferConfig: f.kvTransferConfig ? parseKvTransferConfig(f.kvTransferConfig) : undefined,
    kvEvents: f.kvEventsConfig ? parseKvEventsConfig(f.kvEventsConfig) : null,
    kvEventsPlaintext: !!f.kvEventsPlaintext,
    kvConfigFile: f.kvConfig ?? null,
    peerAllowlist: f.kvPeerAllowlist ?? [],
  };
}

/** Registers the three tables on serve (help order: listener and model, engine, KV, server extras). */
export function addServeFlags(cmd: Command): Command {
  const { host, port, servedModelName, generationConfig, loadFormat, ...rest } = SERVER_FLAGS;
  const { kvPeerAllowlist, ...kv } = KV_FLAGS;
  addFlags(cmd, { host, port, servedModelName, generationConfig, loadFormat } as FlagTable<ServeServerInput>, serverDefaults);
  addFlags(cmd, ENGINE_FLAGS, engineDefaults);
  addFlags(cmd, kv as FlagTable<ServeKvInput>, {});
  addFlags(cmd, rest as FlagTable<ServeServerInput>, serverDefaults);
  return addFlags(cmd, { kvPeerAllowlist } as FlagTable<ServeKvInput>, {});
}
