import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKvConfig, parseKvConfig } from './config.js';
import { PdsError } from '../util/errors.js';

function configErr(field: string) {
  return (e: unknown) => e instanceof PdsError && e.code === 'PDS_ERR_CONFIG' && e.param === field && e.message.includes(field);
}

describe('kv config', () => {
  it('defaults match the documented values', () => {
    const c = parseKvConfig({});
    assert.equal(c.chunk_size, 256);
    assert.equal(c.local_cpu, true);
    assert.equal(c.max_local_cpu_size, 5);
    assert.equal(c.maxLocalCpuBytes, 5 * 2 ** 30);
    assert.equal(c.save_unfull_chunk, true);
    assert.equal(c.blocking_timeout_secs, 10);
    assert.equal(c.min_retrieve_tokens, 0);
    assert.equal(c.remote, null);
    assert.equal(c.extra_config.remote_transport, 'auto');
  });

  it('rejects an unknown field, naming it', () => {
    assert.throws(() => parseKvConfig({ chunk_sise: 256 }), configErr('chunk_sise'));
    assert.throws(() => parseKvConfig({ extra_config: { bogus: 1 } }), configErr('extra_config.bogus'));
  });

  it('rejects bad values, naming the field', () => {
    assert.throws(() => parseKvConfig({ chunk_size: 0 }), configErr('chunk_size'));
    assert.throws(() => parseKvConfig({ chunk_size: 'big' }), configErr('chunk_size'));
    assert.throws(() => parseKvConfig({ local_cpu: 'yes' }), configErr('local_cpu'));
    assert.throws(() => parseKvConfig({ remote_url: 'lm://h:1' }), configErr('remote_url'));
    assert.throws(() => parseKvConfig({ remote_url: 'pdkv://h:99999' }), configErr('remote_url'));
    assert.throws(() => parseKvConfig({ extra_config: { remote_transport: 'udp' } }), configErr('extra_config.remote_transport'));
  });

  it('local_disk needs a positive max_local_disk_size; file:// prefix accepted', () => {
    assert.equal(parseKvConfig({}).disk, null);
    assert.throws(() => parseKvConfig({ local_disk: '/tmp/kv' }), configErr('max_local_disk_size'));
    assert.deepEqual(parseKvConfig({ local_disk: 'file:///tmp/kv/', max_local_disk_size: 2 }).disk, { dir: '/tmp/kv/', capacityBytes: 2 * 2 ** 30 });
  });

  it('parses remote_url', () => {
    assert.deepEqual(parseKvConfig({ remote_url: 'pdkv://10.0.0.2:65432' }).remote, { host: '10.0.0.2', port: 65432 });
  });

  it('reads the YAML file, then env overrides win', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvcfg-'));
    try {
      const f = join(dir, 'kv.yaml');
      writeFileSync(f, 'chunk_size: 512\nlocal_cpu: false\nremote_url: pdkv://localhost:65432\nextra_config:\n  lookup_backoff_time: 2\n');
      const fromFile = loadKvConfig(f, {});
      assert.equal(fromFile.chunk_size, 512);
      assert.equal(fromFile.local_cpu, false);
      assert.equal(fromFile.extra_config.lookup_backoff_time, 2);
      const env = { PDSERVE_KV_CONFIG_FILE: f, PDSERVE_KV_CHUNK_SIZE: '128', PDSERVE_KV_LOCAL_CPU: 'true', PDSERVE_KV_EXTRA_CONFIG: '{remote_timeout_secs: 1}' };
      const c = loadKvConfig(null, env);
      assert.equal(c.chunk_size, 128);
      assert.equal(c.local_cpu, true);
      assert.equal(c.extra_config.remote_timeout_secs, 1);
      assert.equal(c.extra_config.lookup_backoff_time, 2, 'file extra_config keys kept under an env extra_config');
      assert.equal(c.remote?.port, 65432);
      assert.throws(() => loadKvConfig(null, { PDSERVE_KV_CHUNK_SIZE: 'abc' }), configErr('chunk_size'));
      assert.throws(() => loadKvConfig(null, { PDSERVE_KV_CHUNKSIZE: '1' }), configErr('PDSERVE_KV_CHUNKSIZE'));
      writeFileSync(f, 'chunk_size: [1\n');
      assert.throws(() => loadKvConfig(f, {}), /not valid YAML/);
      assert.throws(() => loadKvConfig(join(dir, 'nope.yaml'), {}), /cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

});
