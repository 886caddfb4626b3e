// Issue 11 acceptance 2: `pdserve router` (disaggregated_prefill, least-load on both pools) over up's
// 2 prefillers + 2 decoders (default model): 200 mixed requests of uneven sizes, 8 at a time; every
// engine used; the busiest decoder serves at most 1.5x the idlest; a SIGKILLed decoder is ejected by
// the health checks and re-admitted once up has restarted it, with requests still answered meanwhile.
// (The breaker opening on a failing engine is shown in src/router/router.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { postJson, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { spawnUp } from '../helpers/spawn-up.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('2P2D through the router: balanced xPyD, a killed decoder ejected and re-admitted', async (t) => {
  const up = await spawnUp(['--prefill', '2', '--decode', '2', '--kv-pool-size', '64M']);
  let router: Spawned | null = null;
  try {
    const port = (name: string) => Number(new RegExp(`started ${name} \\(pid \\d+\\) on port (\\d+)`).exec(up.output())![1]);
    const pid = (name: string) => Number(new RegExp(`started ${name} \\(pid (\\d+)\\)`).exec(up.output())![1]);
    const names = ['prefiller-0', 'prefiller-1', 'decoder-0', 'decoder-1'];
    const urls = names.map((n) => `http://127.0.0.1:${port(n)}`);
    router = await spawnPdserve([
      'router', '--static-backends', urls.join(','), '--static-model-labels', 'p,p,d,d', '--routing-logic', 'disaggregated_prefill',
      '--prefill-model-labels', 'p', '--decode-model-labels', 'd', '--prefill-policy', 'least-load', '--decode-policy', 'least-load',
      '--health-check-interval', '0.5', '--engine-stats-interval', '1', '--internal-secret-file', join(up.runDir, 'internal-secret'),
    ]);
    const words = 'once upon a time there was a little dog who liked to run in the park with friends'.split(' ');
    let next = 0;
    const failures: string[] = [];
    const worker = async () => {
      for (let i = next++; i < 200; i = next++) {
        const prompt = Array.from({ length: 2 + ((i * 7) % 40) }, (_, k) => words[(i + k) % words.length]).join(' ');
        const r = await postJson(`${router!.url}/v1/completions`, { prompt, max_tokens: 1 + (i % 6), temperature: 0, stream: i % 3 === 0 });
        if (r.status !== 200) failures.push(`${i}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    assert.deepEqual(failures, []);
    const m = await (await fetch(`${router.url}/metrics`)).text();
    const legs = (role: string, url: string) => {
      const x = new RegExp(`^pdserve_proxy_upstream_requests_total\\{role="${role}",upstream="${url}",outcome="ok"\\} (\\d+)`, 'm').exec(m);
      return x ? Number(x[1]) : 0;
    };
    const p = [legs('prefill', urls[0]!), legs('prefill', urls[1]!)];
    const d = [legs('decode', urls[2]!), legs('decode', urls[3]!)];
    assert.equal(p[0]! + p[1]!, 200, `prefill legs ${p}`);
    assert.equal(d[0]! + d[1]!, 200, `decode legs ${d}`);
    t.diagnostic(`prefill legs ${p}, decode legs ${d}`);
    for (const n of [...p, ...d]) assert.ok(n > 0, `every engine used: prefill ${p}, decode ${d}`);
    assert.ok(Math.max(...d) <= 1.5 * Math.min(...d), `least-load: busiest decoder ${Math.max(...d)} <= 1.5 x idlest ${Math.min(...d)}`);

    const healthOf = async (url: string) => ((await (await fetch(`${router!.url}/engines`)).json()) as { url: string; healthy: boolean }[]).find((e) => e.url === url)!.healthy;
    process.kill(pid('decoder-1'), 'SIGKILL');
    let ejected = false;
    for (let i = 0; i < 100 && !ejected; i++) {
      ejected = !(await healthOf(urls[3]!));
      if (!ejected) await sleep(100);
    }
    assert.ok(ejected, 'the killed decoder is ejected');
    for (let i = 0; i < 5; i++) {
      const r = await postJson(`${router.url}/v1/completions`, { prompt: 'hello there', max_tokens: 2 });
      assert.equal(r.status, 200, `served while a decoder is down: ${JSON.stringify(r.json)}`);
    }
    let back = false;
    for (let i = 0; i < 600 && !back; i++) {
      back = await healthOf(urls[3]!);
      if (!back) await sleep(100);
    }
    assert.ok(back, 'up restarted the decoder and the router re-admitted it');
  } finally {
    await router?.stop();
    await up.stop();
  }
});
