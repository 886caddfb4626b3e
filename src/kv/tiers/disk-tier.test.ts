import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { CONFORMANCE_CHUNK, runTierConformance } from './testing/conformance.js';
import { DiskTier } from './disk-tier.js';

const root = mkdtempSync(join(tmpdir(), 'pdserve-disk-tier-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

runTierConformance('DiskTier', async (chunks) => {
  const tier = new DiskTier(join(root, String(n++)), chunks * CONFORMANCE_CHUNK);
  return { tier, cleanup: () => tier.close(), check: () => tier.checkIntegrity() };
});

it('DiskTier: chunks survive a restart; temp files of an interrupted write are removed', async () => {
  const dir = join(root, 'restart');
  const key = createHash('sha256').update('k').digest('hex');
  const a = new DiskTier(dir, 4 * CONFORMANCE_CHUNK);
  const data = Buffer.alloc(CONFORMANCE_CHUNK, 9);
  assert.equal(await a.put(key, data), true);
  await a.close();
  const [file] = readdirSync(dir);
  assert.match(file!, new RegExp(`^${key}\\.[0-9a-f]{8}\\.kvchunk$`));
  writeFileSync(join(dir, `${file}.tmp-dead`), 'half');
  const b = new DiskTier(dir, 4 * CONFORMANCE_CHUNK);
  assert.equal(await b.lookupPrefix([key]), 1);
  const h = (await b.get(key))!;
  assert.ok(Buffer.from(h.bytes).equals(data));
  h.release();
  assert.deepEqual(readdirSync(dir), [file]);
  await b.close();
});
