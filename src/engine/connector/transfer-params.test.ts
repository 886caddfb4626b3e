// kv_transfer_params: typed known fields (nulls allowed, as vLLM's proxy sends them), unknown keys kept,
// wrong types and oversized values refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kvTransferParamsSchema } from './transfer-params.js';

test('the params a producer returns parse to themselves; nulls and unknown keys pass', () => {
  const p = { do_remote_decode: false, do_remote_prefill: true, remote_engine_id: 'e1', remote_request_id: 'r1', remote_block_ids: [0, 3, 7], remote_host: '127.0.0.1', remote_port: 8100, tp_size: 1, remote_transport: 'tcp' };
  assert.deepEqual(kvTransferParamsSchema.parse(p), p);
  const vllmProxy = { do_remote_decode: true, do_remote_prefill: false, remote_engine_id: null, remote_block_ids: null, remote_host: null, remote_port: null };
  assert.deepEqual(kvTransferParamsSchema.parse(vllmProxy), vllmProxy);
  assert.deepEqual(kvTransferParamsSchema.parse({ do_remote_decode: true, custom_field: { a: 1 } }), { do_remote_decode: true, custom_field: { a: 1 } });
});

test('wrong types and out-of-range values are refused with the field named', () => {
  const bad = (v: unknown) => {
    const r = kvTransferParamsSchema.safeParse(v);
    assert.equal(r.success, false, JSON.stringify(v));
    return r.error!.issues[0]!.path.join('.');
  };
  assert.equal(bad({ remote_port: '8100' }), 'remote_port');
  assert.equal(bad({ remote_port: 70000 }), 'remote_port');
  assert.equal(bad({ do_remote_prefill: 'yes' }), 'do_remote_prefill');
  assert.equal(bad({ remote_block_ids: [1, -2] }), 'remote_block_ids.1');
  assert.equal(bad({ remote_block_ids: [1.5] }), 'remote_block_ids.0');
  assert.equal(bad({ remote_engine_id: 'x'.repeat(129) }), 'remote_engine_id');
  assert.equal(bad({ remote_host: 'h'.repeat(256) }), 'remote_host');
  bad('not an object');
  bad([1, 2]);
});
