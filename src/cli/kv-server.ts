// `pdserve kv-server --port 65432 --pool-size 4G [--host 0.0.0.0] [--pool-file /dev/shm/pdserve-pool-<port>]`
// The shared-memory KV pool + metadata server (src/kv/server/kv-server.ts). Engines reach it with
// remote_url: pdkv://host:port in their KV config.
import type { Command } from 'commander';
import { KvServer } from '../kv/server/kv-server.js';
import { DEFAULT_MAX_PAYLOAD } from '../kv/server/protocol.js';
import { parseSize } from '../util/size.js';
import { getLogger } from '../util/logger.js';

const log = getLogger('kv-server');

export function registerKvServer(program: Command): void {
  program
    .command('kv-server')
    .description('shared-memory KV pool server (remote_url: pdkv://host:port)')
    .option('--host <host>', 'address to listen on', '0.0.0.0')
    .option('--port <port>', 'TCP port', '65432')
    .option('--pool-size <size>', 'pool size (e.g. 4G, 512M, 32G)', '4G')
    .option('--pool-file <path>', 'pool file (default /dev/shm/pdserve-pool-<port>; pools over 4G add <path>.1, <path>.2, ...)')
    .option('--max-frame <size>', 'largest accepted frame payload', String(DEFAULT_MAX_PAYLOAD))
    .option('--no-prefault', 'do not touch the pool pages at start')
    .action(async (o: { host: string; port: string; poolSize: string; poolFile?: string; maxFrame: string; prefault: boolean }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        console.error(`pdserve kv-server: --port must be an integer in [0, 65535], got "${o.port}"`);
        process.exit(2);
      }
      let server: KvServer;
      try {
        server = await KvServer.start({
          host: o.host,
          port,
          poolSize: parseSize(o.poolSize),
          poolFile: o.poolFile ?? `/dev/shm/pdserve-pool-${port}`,
          maxPayload: parseSize(o.maxFrame),
          prefault: o.prefault,
        });
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
