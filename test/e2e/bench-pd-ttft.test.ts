// `pdserve bench pd-ttft` end to end on the default model: three real deployments (1P1D tcp push, 1P1D tcp
// pull, colocated), interleaved measurements, ratios from the same run, and both decoders' (P2P tcp) lines.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cliPath } from '../helpers/fixtures.js';

const run = promisify(execFile);

it('bench pd-ttft --json: push, pull and colocated measured in one run; the KV moved over tcp both ways', { timeout: 240_000 }, async () => {
  const { stdout } = await run(process.execPath, [cliPath, 'bench', 'pd-ttft', '--prompt-len', '300', '--iters', '2', '--json'], { timeout: 230_000, maxBuffer: 1 << 22 });
  const r = JSON.parse(stdout);
  assert.equal(r.promptLen, 300);
  for (const t of ['push', 'pull', 'colocated']) {
    assert.equal(r.ms[t].length, 2, t);
    assert.ok(r.median[t] > 0, t);
  }
  assert.ok(Math.abs(r.ratios.pullOverPush - r.median.pull / r.median.push) < 1e-9);
  assert.ok(Math.abs(r.ratios.colocatedOverPull - r.median.colocated / r.median.pull) < 1e-9);
  assert.match(r.pushLogLine, /^Retrieved 299 out of 299 required tokens .*\(P2P tcp\)$/);
  assert.match(r.pullLogLine, /^Retrieved 299 out of 299 required tokens .*\(P2P tcp\)$/);
});
