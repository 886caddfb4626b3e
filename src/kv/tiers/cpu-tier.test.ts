import { runTierConformance } from './testing/conformance.js';
import { CONFORMANCE_CHUNK } from './testing/conformance.js';
import { CpuTier } from './cpu-tier.js';

runTierConformance('CpuTier', async (chunks) => {
  const tier = new CpuTier(chunks * CONFORMANCE_CHUNK);
  return { tier, cleanup: () => tier.close(), check: () => tier.checkIntegrity() };
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KvCacheAccess } from '../../engine/connector/base.js';

test('CpuTier page-locks new chunk buffers for an attached GPU KV cache and unlocks every one it drops', async () => {
  const locked = new Set<Uint8Array>();
  let registered = 0;
  const kv = {
    blockSize: 16,
    bytesPerToken: 64,
    gather: async () => {},
    scatter: async () => {},
    registerHost: (v: Uint8Array) => {
      registered++;
      locked.add(v);
      return () => assert.ok(locked.delete(v), 'unlocked twice or never locked');
    },
  } satisfies KvCacheAccess;
  const size = 4096;
  const tier = new CpuTier(3 * size);
  tier.attachKvCache(kv);
  const key = (i: number) => i.toString(16).padStart(64, '0');
  for (let i = 0; i < 6; i++) assert.equal(await tier.put(key(i), new Uint8Array(size).fill(i)), true); // LRU churn: buffers recycled
  assert.equal(registered, 3, 'three buffers of one size, reused under churn');
  for (let i = 0; i < 3; i++) assert.equal(await tier.put(key(100 + i), new Uint8Array(size / 2)), true); // another size: drops spares
  await tier.close();
  assert.equal(locked.size, 0, 'every page-locked buffer unlocked');
});
