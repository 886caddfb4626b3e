// `pdserve up [MODEL] --prefill N --decode M --port 9000 [-- engine flags]`: the whole PD deployment
// on one host (src/up). `--prefill 0` is the colocated baseline behind the same proxy.
import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { runUp } from '../up/launcher.js';
import { defaultRestartPolicy } from '../up/restart-policy.js';
import { defaultPoolFile } from '../up/stale-pool.js';
import { resolveApiKeys } from '../security/api-key.js';
import { intOption, numOption } from './flags.js';
import type { UpOptions } from '../up/plan.js';
import { kvConfigDefaults } from '../kv/config.js';

const int = (flag: string) => intOption(flag, 0);
const num = (flag: string) => numOption(flag, 0);
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/** Splits argv at the first "--": the part after it goes to every engine. */
export function splitEngineArgs(argv: string[]): { own: string[]; engine: string[] } {
  const i = argv.indexOf('--');
  return i < 0 ? { own: argv, engine: [] } : { own: argv.slice(0, i), engine: argv.slice(i + 1) };
}

export function timestampDir(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

interface UpFlags {
  prefill: number;
  decode: number;
  host: string;
  port: number;
  device?: string;
  prefillDevices?: string[];
  decodeDevices?: string[];
  kvPoolSize: string;
  kvPoolFile?: string;
  chunkSize: number;
  kvTransfer: string;
  kvMode: string;
  loadFormat?: string;
  runDir?: string;
  healthTimeout: number;
  gracePeriod: number;
  proxyFlags?: string;
  router?: string;
  apiKey?: string;
  maxRestarts: number;
  restartWindow: number;
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('start a kv-server, N prefillers, M decoders and the proxy; Ctrl+C stops all')
    .argument('[model]', 'model for every engine (default: the engine default)')
    .argument('[engine-flags...]', 'after "--": flags passed to every engine')
    .option('--prefill <n>', 'prefill instances (0 = colocated baseline: decoders only)', int('--prefill'), 1)
    .option('--decode <n>', 'decode instances', int('--decode'), 1)
    .option('--host <host>', 'address the proxy listens on (0.0.0.0 = all; then set --api-key)', '127.0.0.1')
    .option('--port <port>', 'proxy port', int('--port'), 9000)
    .option('--device <device>', 'device for every engine: cpu | cuda | cuda:N (spread over GPUs with --prefill-devices/--decode-devices)')
    .option('--prefill-devices <ids>', 'CUDA device ids for the prefillers, round robin (e.g. 0,1)', list)
    .option('--decode-devices <ids>', 'CUDA device ids for the decoders, round robin (e.g. 2,3)', list)
    .option('--kv-pool-size <size>', 'kv-server pool size (e.g. 1G, 512M)', '1G')
    .option('--kv-pool-file <path>', 'kv-server pool file (default: under /dev/shm); removed on exit')
    .option('--chunk-size <n>', 'KV chunk size in tokens, written to the engines\' KV config', int('--chunk-size'), kvConfigDefaults.chunk_size)
    .addOption(new Option('--kv-transfer <channel>', 'how KV moves from prefillers to decoders: pool (kv-server), cuda_ipc (GPU to GPU, pool as fallback) or tcp (engine to engine, no kv-server)').choices(['pool', 'cuda_ipc', 'tcp']).default('pool'))
    .addOption(new Option('--kv-mode <mode>', 'with --kv-transfer tcp: pull (the decoder reads after the prefill) or push (both legs at once, the prefiller writes each chunk as it computes it)').choices(['pull', 'push']).default('pull'))
    .option('--load-format <format>', 'passed to every engine as --load-format')
    .option('--run-dir <dir>', 'where configs and logs go (default ./runs/<timestamp>)')
    .option('--router <logic>', 'front the engines with `pdserve router --routing-logic LOGIC` (roundrobin, session, prefixaware, kvaware, disaggregated_prefill, least-load, power-of-two) instead of the proxy; --proxy-flags then go to the router. With a kvaware pool (or a --kv-events-config after --) each engine publishes KV events on its own loopback port and the router subscribes to them')
    .option('--proxy-flags <flags>', 'extra `pdserve proxy` flags, space-separated (e.g. "--local-prefill-below 256")')
    .option('--health-timeout <s>', 'seconds all servers together may take to start and answer /health', num('--health-timeout'), 300)
    .option('--grace-period <s>', 'seconds between SIGTERM and SIGKILL on shutdown', num('--grace-period'), 10)
    .option('--api-key <key>', 'users\' API key, checked by the proxy only (else $PDSERVE_API_KEY / $VLLM_API_KEY)')
    .option('--max-restarts <n>', 'restarts of one child within --restart-window before up gives up on it', int('--max-restarts'), defaultRestartPolicy.maxRestarts)
    .option('--restart-window <s>', 'seconds over which --max-restarts counts', num('--restart-window'), defaultRestartPolicy.windowMs / 1000)
    .action(async (_model: string | undefined, _rest: string[], flags: UpFlags) => {
      const { own, engine } = splitEngineArgs(process.argv.slice(2));
      // commander also sees the words after "--" as operands: the model counts only before "--"
      const model = _model !== undefined && own.includes(_model) ? _model : null;
      const runDir = resolve(flags.runDir ?? join('runs', timestampDir()));
      const shm = existsSync('/dev/shm') ? '/dev/shm' : runDir;
      const opts: UpOptions = {
        model,
        prefill: flags.prefill,
        decode: flags.decode,
        host: flags.host,
        port: flags.port,
        device: flags.device ?? null,
        prefillDevices: flags.prefillDevices ?? [],
        decodeDevices: flags.decodeDevices ?? [],
        kvPoolSize: flags.kvPoolSize,
        kvPoolFile: resolve(flags.kvPoolFile ?? defaultPoolFile(shm)),
        chunkSize: flags.chunkSize,
        kvTransfer: flags.kvTransfer as 'pool' | 'cuda_ipc' | 'tcp',
        kvMode: flags.kvMode as 'pull' | 'push',
        loadFormat: flags.loadFormat ?? null,
        runDir,
        engineArgs: engine,
        proxyArgs: (flags.proxyFlags ?? '').split(/\s+/).filter(Boolean),
        router: flags.router ?? null,
        healthTimeoutMs: flags.healthTimeout * 1000,
        graceMs: flags.gracePeriod * 1000,
        apiKey: resolveApiKeys(flags.apiKey)[0] ?? null,
      };
      const policy = { ...defaultRestartPolicy, maxRestarts: flags.maxRestarts, windowMs: flags.restartWindow * 1000 };
      let code: number;
      try {
        code = await runUp(opts, { out: (l) => process.stdout.write(l + '\n'), err: (l) => process.stderr.write(l + '\n') }, undefined, policy);
      } catch (e) {
        process.stderr.write(`pdserve up: ${(e as Error).message}\n`);
        code = 2;
      }
      process.exit(code);
    });
}
