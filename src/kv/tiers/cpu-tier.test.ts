import { runTierConformance } from './conformance.js';
import { CONFORMANCE_CHUNK } from './conformance.js';
import { CpuTier } from './cpu-tier.js';

runTierConformance('CpuTier', async (chunks) => {
  const tier = new CpuTier(chunks * CONFORMANCE_CHUNK);
  return { tier, cleanup: () => tier.close(), check: () => tier.checkIntegrity() };
});
