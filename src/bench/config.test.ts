import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { addReportOptions, addTargetModelOptions, addWorkloadOptions } from './cli-options.js';
import { parseGoodput, parseReport, parseTarget, parseWorkload } from './config.js';

function parse(argv: string[]): Record<string, unknown> {
  const cmd = new Command('serve').exitOverride().option('--base-url <url>').option('--host <h>', 'h', '127.0.0.1').option('--port <p>', 'p', '8000');
  addTargetModelOptions(cmd);
  addWorkloadOptions(cmd);
  addReportOptions(cmd);
  cmd.parse(argv, { from: 'user' });
  return cmd.opts();
}

test("defaults are vllm bench serve's", () => {
  const o = parse([]);
  const w = parseWorkload(o);
  const r = parseReport(o);
  const t = parseTarget(o);
  assert.equal(w.datasetName, 'random');
  assert.equal(w.numPrompts, 1000);
  assert.equal(w.randomInputLen, 1024);
  assert.equal(w.randomOutputLen, 128);
  assert.equal(w.randomRangeRatio, 0);
  assert.equal(w.randomPrefixLen, 0);
  assert.equal(w.requestRate, Infinity);
  assert.equal(w.burstiness, 1);
  assert.equal(w.maxConcurrency, null);
  assert.equal(w.seed, 0);
  assert.equal(w.numWarmups, 0);
  assert.equal(w.ignoreEos, true); // random dataset always ignores EOS, as in vLLM
  assert.equal(w.prefixRepetitionPrefixLen, 256);
  assert.equal(w.prefixRepetitionNumPrefixes, 10);
  assert.deepEqual(r.percentileMetrics, ['ttft', 'tpot', 'itl']);
  assert.deepEqual(r.metricPercentiles, [99]);
  assert.deepEqual(r.goodput, {});
  assert.equal(t.baseUrl, 'http://127.0.0.1:8000');
  assert.equal(t.endpoint, '/v1/completions');
  assert.equal(t.backend, 'openai');
});

test('options parse and validate with clear messages', () => {
  const o = parse(['--base-url', 'http://h:1/', '--endpoint', '/v1/chat/completions', '--request-rate', '2.5', '--burstiness', 'inf',
    '--max-concurrency', '4', '--goodput', 'ttft:200', 'tpot:50', '--metric-percentiles', '50,99.9', '--dataset-name', 'prefix_repetition']);
  const w = parseWorkload(o);
  assert.equal(w.requestRate, 2.5);
  assert.equal(w.burstiness, Infinity);
  assert.equal(w.maxConcurrency, 4);
  assert.equal(w.ignoreEos, false);
  assert.deepEqual(parseReport(o).goodput, { ttft: 200, tpot: 50 });
  assert.deepEqual(parseReport(o).metricPercentiles, [50, 99.9]);
  assert.equal(parseTarget(o).baseUrl, 'http://h:1');
  assert.equal(parseTarget(o).backend, 'openai-chat');
  assert.throws(() => parseWorkload(parse(['--max-concurrency', '0'])), /--max-concurrency must be >= 1/);
  assert.throws(() => parseWorkload(parse(['--request-rate', 'fast'])), /--request-rate must be a number/);
  assert.throws(() => parseWorkload(parse(['--random-range-ratio', '1'])), /\[0, 1\)/);
  assert.throws(() => parseWorkload(parse(['--dataset-path', 'x.json'])), /cannot use 'random' dataset with --dataset-path/);
  assert.throws(() => parseReport(parse(['--percentile-metrics', 'ttft,foo'])), /unknown metric 'foo'/);
  assert.throws(() => parseGoodput(['ttft=5']), /KEY:VALUE/);
  assert.throws(() => parseGoodput(['ttft:-1']), />= 0/);
  assert.throws(() => parseGoodput(['ttft']), /KEY:VALUE/);
  assert.throws(() => parseGoodput(['ttft:']), /KEY:VALUE/);
  assert.throws(() => parseGoodput(['ttft:1:2']), /KEY:VALUE/);
  assert.throws(() => parseGoodput(['ttft:fast']), /KEY:VALUE/);
  assert.throws(() => parseGoodput(['ttft:nan']), /KEY:VALUE/);
  assert.throws(() => parseGoodput(['itl:5']), /metric 'itl'.*use ttft, tpot or e2el/);
  assert.throws(() => parseGoodput(['TTFT:5']), /metric 'TTFT'/);
  assert.deepEqual(parseGoodput(['ttft:1e3', 'tpot: 25.5 ', 'e2el:inf', 'ttft:900']), { ttft: 900, tpot: 25.5, e2el: Infinity });
  assert.throws(() => parseTarget(parse(['--base-url', 'ftp://x'])), /invalid base URL/);
});
