// Issue 9 acceptance 7 (and `up --api-key` through a real deployment): chaos during load through
// `pdserve up` 2P2D. While 6 bounded clients send greedy requests (mixed prompts, stream and not) with
// known expected tokens, each role (prefiller-0, decoder-0, the kv-server, the proxy) is SIGKILLed once
// and SIGSTOPped once (20 s, then SIGCONT). Asserted: every 200 answer equals the reference exactly
// (0 wrong tokens), every request ends within HANG_MS (0 hangs), each killed child was restarted (up's
// log lines), in-flight losses are counted and printed; at the end every engine's /debug/integrity is
// clean (signed with the run directory's secret) and the kv-server holds no pins and no half-written
// chunk; SIGKILL of `up` leaves no child process and no pool file.
// Reference: the fixture stories260K's greedy tokens (PDSERVE_FIXTURES); without fixtures, the built-in
// default model (stories260k) and a single engine's greedy answers computed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir, readReference, comparableSteps } from '../helpers/fixtures.js';
import { postJson, spawnPdserve } from '../helpers/spawn-server.js';
import { spawnUp, type UpRun } from '../helpers/spawn-up.js';
import { KvClient } from '../../src/kv/server/kv-client.js';
import { Op } from '../../src/kv/server/protocol.js';
import { loadInternalSecret } from '../../src/security/internal-secret.js';
import { signRequest } from '../../src/security/request-signing.js';

const KEY = 'sk-chaos-user';
const AUTH = { authorization: `Bearer ${KEY}` };
const MAX_TOKENS = 16;
const CLIENTS = 6;
const HANG_MS = 60_000; // a request still open after this is a hang (a SIGSTOP lasts 20 s)
const STOP_MS = 20_000;
const MAX_REQUESTS = 20_000; // the load loop's hard bound

interface Case {
  prompt: number[] | string;
  want: number[]; // exact greedy token ids for MAX_TOKENS (or fewer where the reference nears a tie)
}

const textPrompts = [
  'Once upon a time',
  'One day, Lily went to the park with her mom. She saw a big tree and',
  'Tom had a big red ball.',
  'The little dog',
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, she saw a big, red ball in the sky. '.repeat(3),
];

async function referenceCases(): Promise<{ model: string[]; cases: Case[] }> {
  const fx = fixturesDir();
  if (fx) {
    const ref = readReference(fx, 'stories260K');
    return {
      model: [join(fx, 'models', 'stories260K')],
      cases: ref.cases.map((c) => ({ prompt: c.prompt, want: c.greedy.slice(0, Math.min(MAX_TOKENS, comparableSteps(c))) })),
    };
  }
  console.log('# fixtures not found (set PDSERVE_FIXTURES): chaos runs the built-in default model against a single engine\'s answers');
  const one = await spawnPdserve(['serve']);
  try {
    const cases: Case[] = [];
    for (const prompt of textPrompts) {
      const r = await postJson(`${one.url}/v1/completions`, { prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true, return_token_ids: true });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      cases.push({ prompt, want: r.json.choices[0].token_ids });
    }
    return { model: [], cases };
  } finally {
    await one.stop();
  }
}

type Outcome = 'ok' | 'wrong' | 'hang' | 'lost';
interface Tally {
  ok: number;
  wrong: number;
  hang: number;
  lost: number;
  why: Map<string, number>;
}
const newTally = (): Tally => ({ ok: 0, wrong: 0, hang: 0, lost: 0, why: new Map() });

/** One request; the answer's tokens are compared with want when it completed (200, whole stream). */
async function oneRequest(url: string, c: Case, stream: boolean): Promise<{ outcome: Outcome; why?: string; got?: number[] }> {
  const body = { prompt: c.prompt, max_tokens: c.want.length, temperature: 0, ignore_eos: true, return_token_ids: true, stream };
  const signal = AbortSignal.timeout(HANG_MS);
  try {
    const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...AUTH }, body: JSON.stringify(body), signal });
    const text = await r.text();
    if (r.status !== 200) return { outcome: 'lost', why: `status ${r.status}` };
    let got: number[];
    if (!stream) {
      got = JSON.parse(text).choices[0].token_ids;
    } else {
      got = [];
      let done = false;
      for (const line of text.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6).trim();
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const j = JSON.parse(data);
        if (j.error) return { outcome: 'lost', why: `stream error ${j.error.code ?? j.error.type ?? ''}` };
        got.push(...(j.choices?.[0]?.token_ids ?? []));
      }
      if (!done) return { outcome: 'lost', why: 'stream cut' };
    }
    const same = got.length === c.want.length && got.every((t, i) => t === c.want[i]);
    return same ? { outcome: 'ok' } : { outcome: 'wrong', got };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    if (err.name === 'TimeoutError' || signal.aborted) return { outcome: 'hang' };
    return { outcome: 'lost', why: err.cause?.code ?? err.name };
  }
}

/** pid of the newest instance of each child, from up's "started NAME (pid P) on port N" lines */
function latest(up: UpRun): Map<string, { pid: number; port: number }> {
  const m = new Map<string, { pid: number; port: number }>();
  for (const x of up.output().matchAll(/started (\S+) \(pid (\d+)\) on port (\d+)/g)) m.set(x[1]!, { pid: Number(x[2]), port: Number(x[3]) });
  return m;
}
const everyPid = (up: UpRun) => [...up.output().matchAll(/started (\S+) \(pid (\d+)\)/g)].map((x) => ({ name: x[1]!, pid: Number(x[2]) }));

/** A live process (a zombie waiting to be reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, what: string, ms: number) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out (${ms} ms) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('chaos through up 2P2D: SIGKILL and SIGSTOP of every role under load', { timeout: 420_000 }, async () => {
  const { model, cases } = await referenceCases();
  // chunk 64: every prompt of 64+ tokens goes through the pool; a small pool keeps the test light
  const up = await spawnUp([...model, '--prefill', '2', '--decode', '2', '--chunk-size', '64', '--kv-pool-size', '64M', '--api-key', KEY, '--max-restarts', '3'], 180_000);
  const secret = loadInternalSecret(join(up.runDir, 'internal-secret')).key;
  const poolFile = (JSON.parse(readFileSync(join(up.runDir, 'up.json'), 'utf8')) as { poolFile: string }).poolFile;
  let upKilled = false;
  try {
    assert.ok(existsSync(poolFile), `pool file ${poolFile}`);
    // `up --api-key`: the proxy demands the users' key; engines behind it trust the proxy's signature
    const probe = { prompt: 'Once upon a time', max_tokens: 2, temperature: 0 };
    assert.equal((await postJson(`${up.url}/v1/completions`, probe)).status, 401, 'no key through up');
    const wrongKey = await postJson(`${up.url}/v1/completions`, probe, { authorization: 'Bearer nope' });
    assert.equal(wrongKey.status, 401);
    assert.equal(typeof wrongKey.json.error.message, 'string');
    assert.equal((await fetch(`${up.url}/health`)).status, 200, '/health open');
    for (const c of cases) {
      const r = await oneRequest(up.url, c, false);
      assert.equal(r.outcome, 'ok', `warm-up before any fault: ${JSON.stringify(r)}`);
    }

    // --- load: CLIENTS workers, each alternating stream / non-stream over the cases
    const tallies = new Map<string, Tally>();
    let phase = 'steady';
    const wrongs: string[] = [];
    let running = true;
    let sent = 0;
    const worker = async (w: number) => {
      for (let i = 0; running && sent < MAX_REQUESTS; i++) {
        sent++;
        const c = cases[(w + i) % cases.length]!;
        const r = await oneRequest(up.url, c, (w + i) % 2 === 0);
        const at = phase; // counted where it ended: a loss belongs to the fault that cut it
        if (!tallies.has(at)) tallies.set(at, newTally());
        const t = tallies.get(at)!;
        t[r.outcome]++;
        if (r.why) t.why.set(r.why, (t.why.get(r.why) ?? 0) + 1);
        if (r.outcome === 'wrong') wrongs.push(`${at}: prompt ${JSON.stringify(c.prompt).slice(0, 40)} got ${r.got} want ${c.want}`);
        if (r.outcome !== 'ok') await sleep(100); // a refused connection must not spin the loop
      }
    };
    const load = Promise.all(Array.from({ length: CLIENTS }, (_, w) => worker(w)));

    const restarts = (name: string) => (up.output().match(new RegExp(`${name} is ready again`, 'g')) ?? []).length;
    const roles = ['prefiller-0', 'decoder-0', 'kv-server', 'proxy'];
    try {
      await sleep(3000);
      for (const name of roles) {
        phase = `SIGKILL ${name}`;
        const before = restarts(name);
        process.kill(latest(up).get(name)!.pid, 'SIGKILL');
        await until(() => restarts(name) > before, `${name} to be restarted`, 90_000);
        await sleep(3000);
        phase = `SIGSTOP ${name}`;
        const pid = latest(up).get(name)!.pid;
        process.kill(pid, 'SIGSTOP');
        await sleep(STOP_MS);
        process.kill(pid, 'SIGCONT');
        await sleep(4000);
      }
      phase = 'after';
      await sleep(3000);
    } finally {
      running = false;
      await load;
    }

    // --- figures
    const total = newTally();
    for (const [at, t] of tallies) {
      for (const k of ['ok', 'wrong', 'hang', 'lost'] as const) total[k] += t[k];
      const why = [...t.why].map(([k, v]) => `${k} x${v}`).join(', ');
      console.log(`# chaos ${at.padEnd(20)} ok ${t.ok}, wrong ${t.wrong}, hang ${t.hang}, lost ${t.lost}${why ? ` (${why})` : ''}`);
    }
    console.log(`# chaos total: ${sent} requests: ok ${total.ok}, wrong ${total.wrong}, hang ${total.hang}, lost in flight ${total.lost}`);
    assert.deepEqual(wrongs, [], 'every 200 answer equals the reference');
    assert.equal(total.hang, 0, `no request open after ${HANG_MS} ms`);
    assert.ok(total.ok > 100, `the deployment served under chaos (${total.ok} correct answers)`);
    assert.equal(tallies.get('steady')?.lost ?? 0, 0, 'no loss before any fault');
    assert.equal(tallies.get('after')?.lost ?? 0, 0, 'no loss once every role is back');
    for (const name of roles) {
      assert.match(up.output(), new RegExp(`ERROR: ${name} exited \\(killed by SIGKILL\\)`));
      assert.match(up.output(), new RegExp(`restarting ${name} in \\d+ ms`));
    }

    // --- nothing leaked: every engine's blocks, the kv-server's pins and half-written chunks
    await sleep(1500);
    const now = latest(up);
    for (const [name, c] of now) {
      if (!/^(prefiller|decoder)-/.test(name)) continue;
      const r = await fetch(`http://127.0.0.1:${c.port}/debug/integrity`, { headers: signRequest(secret, 'GET', '/debug/integrity', null) });
      const j = (await r.json()) as { ok: boolean; blocks_free: number; blocks_total: number };
      assert.equal(r.status, 200, `${name}: ${JSON.stringify(j)}`);
      assert.equal(j.ok, true, `${name} integrity`);
      assert.equal(j.blocks_free, j.blocks_total, `${name}: all blocks free`);
    }
    const kv = new KvClient({ host: '127.0.0.1', port: now.get('kv-server')!.port, timeoutMs: 3000, backoffMs: 100, secret });
    try {
      const st = JSON.parse((await kv.request(Op.STATS, [])).payload.toString('utf8'));
      assert.equal(st.writing, 0, 'no half-written chunk');
      assert.equal(st.pinnedChunks, 0, 'no pins left');
    } finally {
      kv.close();
    }

    // --- SIGKILL of up itself: no child survives it, no pool file is left
    const pids = everyPid(up);
    assert.ok(pids.length >= 5 + roles.length, `${pids.length} children started`);
    upKilled = true;
    up.proc.kill('SIGKILL');
    await new Promise((r) => (up.proc.exitCode !== null || up.proc.signalCode ? r(null) : up.proc.once('exit', r)));
    await until(() => pids.every((p) => !alive(p.pid)), `children to die with up (alive: ${pids.filter((p) => alive(p.pid)).map((p) => `${p.name}:${p.pid}`)})`, 15_000);
    await until(() => !existsSync(poolFile), `pool file ${poolFile} to be removed`, 10_000);
  } finally {
    if (!upKilled) await up.stop();
    else up.proc.kill('SIGKILL');
    rmSync(up.runDir, { recursive: true, force: true });
  }
});
