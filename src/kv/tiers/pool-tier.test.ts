import { after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CONFORMANCE_CHUNK, runTierConformance } from './testing/conformance.js';
import { PoolTier } from './pool-tier.js';
import { KvServer } from '../server/kv-server.js';
import { PAGE_SIZE } from '../server/protocol.js';

const servers = new Set<KvServer>();
after(async () => {
  for (const s of servers) await s.stop();
});

for (const transport of ['shm', 'tcp'] as const) {
  runTierConformance(`PoolTier (${transport})`, async (chunks) => {
    const server = await KvServer.start({
      host: '127.0.0.1',
      port: 0,
      poolSize: PAGE_SIZE + chunks * CONFORMANCE_CHUNK,
      poolFile: `/dev/shm/pdserve-test-pool-${randomBytes(6).toString('hex')}`,
      quiet: true,
    });
    servers.add(server);
    const tier = new PoolTier({ host: '127.0.0.1', port: server.port, transport, timeoutMs: 2000, backoffMs: 50 });
    await tier.connect();
    assert.equal(tier.mode, transport);
    return {
      tier,
      check: () => server.checkIntegrity(),
      cleanup: async () => {
        await tier.close();
        await server.stop();
        servers.delete(server);
      },
    };
  });
}
