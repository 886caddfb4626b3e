// `pdserve serve [MODEL]`: one engine behind the OpenAI-compatible API (vLLM's flag names).
import { createGrammarService } from '../structured/create.js';
import type { Command } from 'commander';
import { resolveModel } from '../models/resolve.js';
import { describeSamplingDefaults, resolveSamplingDefaults } from '../models/generation-config.js';
import { createEngine } from '../engine/create-engine.js';
import { createApiServer } from '../server/api-server.js';
import { registerDebugRoutes } from '../server/debug-routes.js';
import { registerConnectorRoutes } from '../server/kv-routes.js';
import { pdConnectorFactory } from '../kv/connector/engine-factory.js';
import { getLogger } from '../util/logger.js';
import { PdsError } from '../util/errors.js';
import { addEdgeOptions, edgeSettings, type EdgeFlags } from './edge-flags.js';
import { addServeFlags, resolveEngineConfig, resolveKvConfig, resolveServerConfig } from './serve-flags.js';
import { TokenizerPool } from '../tokenizer/worker-pool.js';
import { InlineEncoder, type PromptEncoder } from '../tokenizer/prompt-encoder.js';
import { defaultBodyLimit } from '../server/request-limits.js';

const log = getLogger('serve');

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('serve a model (local HF dir, built-in card, HF repo id; none = stories260k, a tiny story model) over the OpenAI API')
    .argument('[model]', 'model directory, built-in card name (qwen3-0.6b, ...) or HF repo id');
  addServeFlags(cmd);
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
  const sc = resolveServerConfig(o);
  const kv = resolveKvConfig(o);
  const edge = edgeSettings(o as EdgeFlags, sc.host);
  const engine = resolveEngineConfig(o);
  const resolved = await resolveModel(model, { loadFormat: sc.loadFormat });
  const created = await createEngine({
    resolved,
    servedModelName: sc.servedModelName?.[0],
    engine,
    kvTransferConfig: kv.kvTransferConfig,
    connectorFactory: pdConnectorFactory(kv.kvConfigFile, undefined, { secret: edge.secret?.key ?? null }),
  });
  const kvEvents = kv.kvEvents;
  // zeromq is loaded only when events are on (it adds to every CLI start otherwise)
  const publisher = kvEvents?.enableKvCacheEvents && kvEvents.publisher === 'zmq'
    ? await (await import('../kv-events/publisher.js')).KvEventPublisher.start(kvEvents, 0,
      edge.secret && !kv.kvEventsPlaintext ? (await import('../kv-events/curve.js')).kvEventsCurve(edge.secret.key) : null) : null;
  if (publisher) {
    if (!engine.enablePrefixCaching) log.warn('--kv-events-config: prefix caching is off, so no block is ever stored');
    created.engine.blockManager.events = publisher;
  }
  const samplingDefaults = resolveSamplingDefaults(sc.generationConfig, resolved.generationConfig);
  const overridden = describeSamplingDefaults(samplingDefaults);
  if (overridden) log.warn(overridden);
  const encoder: PromptEncoder = sc.tokenizerPool
    ? await TokenizerPool.start({ load: created.tokenizerSource, ...sc.tokenizerPool })
    : new InlineEncoder(created.client.tokenizer);
  const eosIds = created.client.tokenizer.eosTokenIds.length ? created.client.tokenizer.eosTokenIds : created.modelConfig.eosTokenIds;
  const grammar = await createGrammarService(created.tokenizerSource.tokenizerJsonPath, created.client.model.vocabSize, eosIds,
    sc.grammar);
  const server = createApiServer(created.client, {
    grammar,
    tools: sc.tools,
    maxModelLen: created.maxModelLen,
    servedModelName: sc.servedModelName ?? resolved.name,
    accessLog: sc.accessLog,
    samplingDefaults,
    apiKeys: edge.apiKeys,
    internalKey: edge.secret?.key ?? null,
    encoder,
    bodyLimit: edge.bodyLimitBytes ?? defaultBodyLimit(created.maxModelLen),
    listener: edge.listener,
  });
  registerDebugRoutes(server.app, created.client);
  if (publisher) publisher.registerMetrics(server.metrics.registry);
  registerConnectorRoutes(server.app, created.connector?.attachServer?.({ internalKey: edge.secret?.key ?? null, peerAllowlist: kv.peerAllowlist }) ?? []);
  const port = await server.listen(sc.port, sc.host);
  // the vocabulary's TokenizerInfo (≈0.4 s for 152k tokens) is built now rather than on the first request
  grammar.warm().catch((e) => log.warn(`structured output unavailable: ${(e as Error).message}`));
  created.connector?.serverListening?.(sc.host, port);
  log.info(`API keys: ${edge.apiKeys.length ? `${edge.apiKeys.length} configured` : 'none (open)'}; internal secret: ${edge.secret ? edge.secret.path : 'none'}; tokenizer: ${sc.tokenizerPool ? `${sc.tokenizerPool.size} worker(s)` : 'inline'}`);
  log.info(`Serving ${created.client.model.name} on http://${sc.host}:${port} (device ${created.native.deviceName})`);
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
