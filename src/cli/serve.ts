// `pdserve serve [MODEL]`: one engine behind the OpenAI-compatible API (vLLM's flag names).
import { createGrammarService } from '../structured/create.js';
import { getToolParser, toolParserNames } from '../tools/parsers/registry.js';
import type { Command } from 'commander';
import { resolveModel } from '../models/resolve.js';
import { describeSamplingDefaults, resolveSamplingDefaults } from '../models/generation-config.js';
import { createEngine } from '../engine/create-engine.js';
import { createApiServer } from '../server/api-server.js';
import { registerDebugRoutes } from '../server/debug-routes.js';
import { registerConnectorRoutes } from '../server/kv-routes.js';
import { parseKvTransferConfig } from '../engine/connector/transfer-config.js';
import { pdConnectorFactory } from '../kv/connector/engine-factory.js';
import type { LoadFormat } from '../models/types.js';
import { parseSize } from '../util/size.js';
import { parseDtypeOption } from '../util/dtype.js';
import { getLogger } from '../util/logger.js';
import { PdsError } from '../util/errors.js';
import { intOption, numOption } from './flags.js';
import { addEdgeOptions, edgeSettings, type EdgeFlags } from './edge-flags.js';
import { TokenizerPool } from '../tokenizer/worker-pool.js';
import { InlineEncoder, type PromptEncoder } from '../tokenizer/prompt-encoder.js';
import { defaultBodyLimit } from '../server/request-limits.js';
import { parseKvEventsConfig } from '../kv-events/config.js';

const log = getLogger('serve');

const dtype = parseDtypeOption;

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('serve a model (local HF dir, built-in card, HF repo id; none = stories260k, a tiny story model) over the OpenAI API')
    .argument('[model]', 'model directory, built-in card name (qwen3-0.6b, ...) or HF repo id')
    .option('--host <host>', 'interface to listen on (0.0.0.0 = all; then set --api-key)', '127.0.0.1')
    .option('--port <port>', 'port to listen on', intOption('--port', 0), 8000)
    .option('--served-model-name <names...>', 'model name(s) in the API; the first is reported in responses (default: the model argument as given)')
    .option('--generation-config <mode>', 'sampling defaults: auto (the model\'s generation_config.json) | vllm (none) | a folder with generation_config.json', 'auto')
    .option('--load-format <fmt>', 'auto | safetensors | dummy (random weights)', 'auto')
    .option('--dtype <dtype>', 'weight dtype: auto | float32 | float16 | bfloat16', dtype, 'auto')
    .option('--device <device>', 'cpu | cuda | cuda:N', 'cpu')
    .option('--threads <n>', 'CPU threads (0 = all cores)', intOption('--threads', 0), 0)
    .option('--block-size <n>', 'tokens per KV block', intOption('--block-size', 1), 16)
    .option('--max-num-batched-tokens <n>', 'token budget of one step (chunked prefill)', intOption('--max-num-batched-tokens', 1), 2048)
    .option('--max-num-seqs <n>', 'max sequences in a batch', intOption('--max-num-seqs', 1), 64)
    .option('--max-model-len <n>', 'max prompt + output tokens (default: the model\'s)', intOption('--max-model-len', 1))
    .option('--enable-prefix-caching', 'reuse KV of shared prefixes (default on)', true)
    .option('--no-enable-prefix-caching', 'disable prefix caching')
    .option('--kv-cache-dtype <dtype>', 'auto (f32 on CPU, the model dtype on GPU) | float32 | float16 | bfloat16; on GPU, float32 with bf16/f16 weights computes in f32 (closest to an fp32 reference; slower prefill)', dtype, 'auto')
    .option('--kv-cache-memory <size>', 'KV pool size, e.g. 2G (default: a fraction of free memory)')
    .option('--gpu-memory-utilization <f>', 'fraction of free GPU memory for the KV pool', numOption('--gpu-memory-utilization'), 0.9)
    .option('--seed <n>', 'seed for dummy weights and unseeded sampling', intOption('--seed'), 0)
    .option('--kv-transfer-config <json>', 'vLLM-style KV connector config, e.g. {"kv_connector":"PdConnector","kv_role":"kv_producer"}')
    .option('--kv-events-config <json>', 'vLLM KVEventsConfig: {"enable_kv_cache_events":true,"publisher":"zmq","endpoint":"tcp://127.0.0.1:5557"} (default endpoint: loopback; CurveZMQ keyed from the internal secret when one is set)')
    .option('--kv-events-plaintext', 'publish KV events without CurveZMQ even with an internal secret (for vLLM collectors and routers)')
    .option('--kv-config <file>', 'KV layer YAML (LMCache field names); also PDSERVE_KV_CONFIG_FILE')
    .option('--access-log', 'log one line per HTTP response', false)
    .option('--no-access-log', 'no per-response log lines (the default; the chart renders engineConfig.accessLog: false as this)')
    .option('--tokenizer-pool-size <n>', 'tokenizer worker threads (0 = tokenize on the event loop)', intOption('--tokenizer-pool-size', 0), 2)
    .option('--tokenizer-queue <n>', 'requests waiting for a tokenizer worker beyond which clients get 429', intOption('--tokenizer-queue', 1), 1024)
    .option('--tokenization-timeout <s>', 'a prompt that takes longer to tokenize gets a 400', numOption('--tokenization-timeout', 0.1), 10)
    .option('--enable-auto-tool-choice', 'tool_choice "auto": parse tool calls out of the model\'s text (needs --tool-call-parser)', false)
    .option('--tool-call-parser <name>', `tool-call format of the model: ${toolParserNames().join(' | ')}`)
    .option('--grammar-compile-timeout <s>', 'structured output: a grammar that takes longer to compile gets a 400', numOption('--grammar-compile-timeout', 0.1), 10)
    .option('--kv-peer-allowlist <host:port>', 'peers a decoder may contact for point-to-point KV (repeatable or comma list; default: loopback hosts)',
      (v: string, prev: string[]) => [...prev, ...v.split(',').map((x) => x.trim()).filter(Boolean)], []);
  addEdgeOptions(cmd, 'default: max-model-len x 64 bytes + 4 MiB')
    .action(async (model: string | undefined, o: Record<string, any>) => {
      try {
        await serve(model, o);
      } catch (e) {
        const msg = e instanceof PdsError || e instanceof Error ? e.message : String(e);
        log.error(msg);
        process.exit(1);
      }
    });
}

async function serve(model: string | undefined, o: Record<string, any>): Promise<void> {
  const loadFormat = o.loadFormat as LoadFormat;
  if (!['auto', 'safetensors', 'dummy'].includes(loadFormat)) throw new PdsError('PDS_ERR_CONFIG', `--load-format must be auto, safetensors or dummy (got ${loadFormat})`);
  if (o.toolCallParser && !getToolParser(o.toolCallParser)) throw new PdsError('PDS_ERR_CONFIG', `--tool-call-parser: unknown parser '${o.toolCallParser}' (${toolParserNames().join(', ')})`);
  if (o.enableAutoToolChoice && !o.toolCallParser) throw new PdsError('PDS_ERR_CONFIG', '--enable-auto-tool-choice requires --tool-call-parser');
  const kvTransferConfig = o.kvTransferConfig ? parseKvTransferConfig(o.kvTransferConfig) : undefined;
  const kvEvents = o.kvEventsConfig ? parseKvEventsConfig(o.kvEventsConfig) : null;
  const edge = edgeSettings(o as EdgeFlags, o.host);
  const resolved = await resolveModel(model, { loadFormat });
  const created = await createEngine({
    resolved,
    servedModelName: o.servedModelName?.[0],
    engine: {
      device: o.device,
      threads: o.threads,
      blockSize: o.blockSize,
      maxNumBatchedTokens: o.maxNumBatchedTokens,
      maxNumSeqs: o.maxNumSeqs,
      maxModelLen: o.maxModelLen,
      enablePrefixCaching: o.enablePrefixCaching,
      kvCacheDtype: o.kvCacheDtype,
      kvCacheMemory: o.kvCacheMemory ? parseSize(o.kvCacheMemory) : undefined,
      gpuMemoryUtilization: o.gpuMemoryUtilization,
      seed: o.seed,
      weightDtype: o.dtype,
    },
    kvTransferConfig,
    connectorFactory: pdConnectorFactory(o.kvConfig ?? null, undefined, { secret: edge.secret?.key ?? null }),
  });
  // zeromq is loaded only when events are on (it adds to every CLI start otherwise)
  const publisher = kvEvents?.enableKvCacheEvents && kvEvents.publisher === 'zmq'
    ? await (await import('../kv-events/publisher.js')).KvEventPublisher.start(kvEvents, 0,
      edge.secret && !o.kvEventsPlaintext ? (await import('../kv-events/curve.js')).kvEventsCurve(edge.secret.key) : null) : null;
  if (publisher) {
    if (!o.enablePrefixCaching) log.warn('--kv-events-config: prefix caching is off, so no block is ever stored');
    created.engine.blockManager.events = publisher;
  }
  const samplingDefaults = resolveSamplingDefaults(o.generationConfig, resolved.generationConfig);
  const overridden = describeSamplingDefaults(samplingDefaults);
  if (overridden) log.warn(overridden);
  const encoder: PromptEncoder = o.tokenizerPoolSize > 0
    ? await TokenizerPool.start({ load: created.tokenizerSource, size: o.tokenizerPoolSize, maxQueue: o.tokenizerQueue, deadlineMs: o.tokenizationTimeout * 1000 })
    : new InlineEncoder(created.client.tokenizer);
  const eosIds = created.client.tokenizer.eosTokenIds.length ? created.client.tokenizer.eosTokenIds : created.modelConfig.eosTokenIds;
  const grammar = await createGrammarService(created.tokenizerSource.tokenizerJsonPath, created.client.model.vocabSize, eosIds,
    { compileTimeoutMs: o.grammarCompileTimeout * 1000 });
  const server = createApiServer(created.client, {
    grammar,
    tools: { enableAutoToolChoice: !!o.enableAutoToolChoice, toolCallParser: o.toolCallParser ?? null },
    maxModelLen: created.maxModelLen,
    servedModelName: o.servedModelName ?? resolved.name,
    accessLog: o.accessLog,
    samplingDefaults,
    apiKeys: edge.apiKeys,
    internalKey: edge.secret?.key ?? null,
    encoder,
    bodyLimit: edge.bodyLimitBytes ?? defaultBodyLimit(created.maxModelLen),
    listener: edge.listener,
  });
  registerDebugRoutes(server.app, created.client);
  if (publisher) publisher.registerMetrics(server.metrics.registry);
  registerConnectorRoutes(server.app, created.connector?.attachServer?.({ internalKey: edge.secret?.key ?? null, peerAllowlist: o.kvPeerAllowlist }) ?? []);
  const port = await server.listen(o.port, o.host);
  // the vocabulary's TokenizerInfo (≈0.4 s for 152k tokens) is built now rather than on the first request
  grammar.warm().catch((e) => log.warn(`structured output unavailable: ${(e as Error).message}`));
  created.connector?.serverListening?.(o.host, port);
  log.info(`API keys: ${edge.apiKeys.length ? `${edge.apiKeys.length} configured` : 'none (open)'}; internal secret: ${edge.secret ? edge.secret.path : 'none'}; tokenizer: ${o.tokenizerPoolSize > 0 ? `${o.tokenizerPoolSize} worker(s)` : 'inline'}`);
  log.info(`Serving ${created.client.model.name} on http://${o.host}:${port} (device ${created.native.deviceName})`);
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${sig}: shutting down`);
    const force = setTimeout(() => process.exit(0), 5000);
    force.unref();
    await server.close().catch(() => {});
    await encoder.close().catch(() => {});
    await grammar.close().catch(() => {});
    await created.client.shutdown().catch(() => {});
    await publisher?.close().catch(() => {});
    created.native.dispose();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
