// k8s discovery's pure parts: which pods are engines (ready, IP, not terminating; IPv6 bracketed; the
// model label from the pod label) and how discovered engines fill the router's pools by role.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { podBackend } from './k8s-discovery.js';
import { applyDiscovered } from './discovery-sync.js';
import { testRouter, backend } from '../../test/helpers/router-harness.js';
import { defaultRouterConfig } from './config.js';

const pod = (over: { ip?: string; ready?: boolean; phase?: string; deleting?: boolean; labels?: Record<string, string> } = {}): V1Pod => ({
  metadata: { name: 'p', labels: over.labels ?? { model: 'llama-decode' }, ...(over.deleting ? { deletionTimestamp: new Date() } : {}) },
  status: { phase: over.phase ?? 'Running', ...(over.ip === '' ? {} : { podIP: over.ip ?? '10.1.2.3' }), conditions: [{ type: 'Ready', status: over.ready === false ? 'False' : 'True' }] },
});

test('podBackend: ready running pods with an IP are engines; the model label comes from the pod', () => {
  assert.deepEqual(podBackend(pod(), 8000, 'model'), { url: 'http://10.1.2.3:8000', model: null, label: 'llama-decode', type: null });
  assert.equal(podBackend(pod({ ip: 'fd00::5' }), 8000, 'model')!.url, 'http://[fd00::5]:8000');
  assert.equal(podBackend(pod({ ready: false }), 8000, 'model'), null);
  assert.equal(podBackend(pod({ phase: 'Pending' }), 8000, 'model'), null);
  assert.equal(podBackend(pod({ ip: '' }), 8000, 'model'), null);
  assert.equal(podBackend(pod({ deleting: true }), 8000, 'model'), null, 'a terminating pod takes no new requests');
  assert.equal(podBackend(pod({ labels: {} }), 8000, 'model')!.label, null);
  assert.equal(podBackend(pod({ labels: { role: 'x' } }), 8000, 'role')!.label, 'x');
});

test('applyDiscovered: disaggregated_prefill roles by label; kept engines keep their state; removed ones leave', async () => {
  // a static router to host the pools; discovery then replaces them
  const r = await testRouter([backend('http://127.0.0.1:1', 'p'), backend('http://127.0.0.1:2', 'd')], { routingLogic: 'disaggregated_prefill', prefillLabels: ['p'], decodeLabels: ['d'] });
  try {
    const rc = { ...defaultRouterConfig, routingLogic: 'disaggregated_prefill' as const, prefillLabels: ['p'], decodeLabels: ['d'], backends: [] };
    const kept = r.state.decoders.all[0]!;
    kept.inflight = 3;
    let inits = 0;
    applyDiscovered(r.state, rc, [backend('http://127.0.0.1:2', 'd'), backend('http://127.0.0.1:3', 'd'), backend('http://127.0.0.1:4', 'p'), backend('http://127.0.0.1:5', 'other')], () => inits++);
    assert.deepEqual(r.state.prefillers.all.map((u) => u.origin), ['http://127.0.0.1:4']);
    assert.deepEqual(r.state.decoders.all.map((u) => u.origin), ['http://127.0.0.1:2', 'http://127.0.0.1:3']);
    assert.equal(r.state.decoders.all[0], kept, 'same Upstream object (health, stats, breaker kept)');
    assert.equal(inits, 2, 'only new engines are initialised');
    assert.deepEqual(r.state.config.decoders, ['http://127.0.0.1:2', 'http://127.0.0.1:3']);
  } finally {
    await r.close();
  }
});
