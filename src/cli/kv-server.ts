// `pdserve kv-server --port 65432 --pool-size 4G [--host 127.0.0.1] [--pool-file PATH] [--internal-secret-file PATH]`
// The shared-memory KV pool + metadata server (src/kv/server/kv-server.ts). Engines reach it with
// remote_url: pdkv://host:port in their KV config. Every connection proves the internal secret
// (--internal-secret-file, else $PDSERVE_INTERNAL_SECRET_FILE); without one the server serves loopback only.
import type { Command } from 'commander';
import { KvServer } from '../kv/server/kv-server.js';
import { KV_SERVER_DEFAULTS } from '../kv/server/kv-server-options.js';
import { DEFAULT_MAX_PAYLOAD } from '../kv/server/protocol.js';
import { resolveInternalSecret } from '../security/internal-secret.js';
import { parseSize } from '../util/size.js';
import { getLogger } from '../util/logger.js';

const log = getLogger('kv-server');
const D = KV_SERVER_DEFAULTS;

interface Flags {
  host: string;
  port: string;
  poolSize: string;
  poolFile?: string;
  maxFrame: string;
  prefault: boolean;
  internalSecretFile?: string;
  maxConnections: string;
  authTimeout: string;
  frameTimeout: string;
  idleTimeout: string;
  maxInFlight: string;
  maxUncommitted: string;
  maxUncommittedBytes?: string;
  maxPins: string;
}

export function registerKvServer(program: Command): void {
  program
    .command('kv-server')
    .description('shared-memory KV pool server (remote_url: pdkv://host:port)')
    .option('--host <host>', 'address to listen on (beyond loopback only with an internal secret)', '127.0.0.1')
    .option('--port <port>', 'TCP port', '65432')
    .option('--pool-size <size>', 'pool size (e.g. 4G, 512M, 32G)', '4G')
    .option('--pool-file <path>', 'pool file (default: in a private 0700 directory /dev/shm/pdserve-kv-XXXXXX; pools over 4G add <path>.1, ...); never a symlink')
    .option('--internal-secret-file <path>', 'file (mode 0600) of the deployment\'s internal secret; also $PDSERVE_INTERNAL_SECRET_FILE')
    .option('--max-frame <size>', 'largest accepted PUT payload', String(DEFAULT_MAX_PAYLOAD))
    .option('--max-connections <n>', 'open connections at most', String(D.maxConnections))
    .option('--auth-timeout <ms>', 'close a connection not authenticated within this', String(D.authTimeoutMs))
    .option('--frame-timeout <ms>', 'close a connection whose frame is not complete (or whose replies are not read) within this', String(D.frameTimeoutMs))
    .option('--idle-timeout <ms>', 'close a connection silent this long (0 = never; clients ping)', String(D.idleTimeoutMs))
    .option('--max-in-flight <size>', 'reply bytes queued per connection before its requests are no longer read', String(D.maxInFlightBytes))
    .option('--max-uncommitted <n>', 'uncommitted allocations per connection', String(D.maxUncommitted))
    .option('--max-uncommitted-bytes <size>', 'uncommitted bytes per connection (default: half the pool, all of one up to 256M)')
    .option('--max-pins <n>', 'pins per connection', String(D.maxPins))
    .option('--no-prefault', 'do not touch the pool pages at start')
    .action(async (o: Flags) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        console.error(`pdserve kv-server: --port must be an integer in [0, 65535], got "${o.port}"`);
        process.exit(2);
      }
      const int = (flag: string, v: string, min: number) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < min) {
          console.error(`pdserve kv-server: ${flag} must be an integer >= ${min}, got "${v}"`);
          process.exit(2);
        }
        return n;
      };
      let server: KvServer;
      try {
        const secret = resolveInternalSecret(o.internalSecretFile);
        server = await KvServer.start({
          host: o.host,
          port,
          poolSize: parseSize(o.poolSize),
          ...(o.poolFile ? { poolFile: o.poolFile } : {}),
          secret: secret?.key ?? null,
          maxPayload: parseSize(o.maxFrame),
          prefault: o.prefault,
          maxConnections: int('--max-connections', o.maxConnections, 1),
          authTimeoutMs: int('--auth-timeout', o.authTimeout, 1),
          frameTimeoutMs: int('--frame-timeout', o.frameTimeout, 1),
          idleTimeoutMs: int('--idle-timeout', o.idleTimeout, 0),
          maxInFlightBytes: parseSize(o.maxInFlight),
          maxUncommitted: int('--max-uncommitted', o.maxUncommitted, 1),
          ...(o.maxUncommittedBytes ? { maxUncommittedBytes: parseSize(o.maxUncommittedBytes) } : {}),
          maxPins: int('--max-pins', o.maxPins, 1),
        });
        if (secret) log.info(`internal secret from ${secret.path}: every connection authenticates`);
      } catch (e) {
        console.error(`pdserve kv-server: ${(e as Error).message}`);
        process.exit(1);
      }
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        log.info(`${sig}: shutting down, removing ${server.opts.poolFile}`);
        void server.stop().then(() => process.exit(0));
        setTimeout(() => process.exit(1), 3000).unref();
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}
