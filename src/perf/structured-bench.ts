// Per-token cost of a JSON-schema constraint against free generation, through the real engine (scheduler,
// forward, sampling) at several batch sizes. Free rows are sampled by the backend (no logits copied out);
// json_schema rows are too, under the grammar's bitmask (uploaded for those rows, applied on the device for
// CUDA); json_schema_host rows take the older host path (PDSERVE_GRAMMAR_MASK_HOST=1: logits to JS, mask
// applied there, sampled natively); host_free rows take the host path without a grammar (what the logits
// copy-out alone costs).
// The matcher's own time (mask + accept) is measured separately, per token.
// Run: node dist/src/perf/structured-bench.js [model=pdserve-demo] [batches=1,32] [tokens=64] [device=cpu]
import { resolveModel } from '../models/resolve.js';
import { createEngine } from '../engine/create-engine.js';
import { createGrammarService } from '../structured/create.js';
import { defaultSamplingParams, type GenerateRequest, type TokenConstraint } from '../engine/protocol.js';

// Three free strings: random weights rarely close one (few tokens hold a quote), so requests run to
// max_tokens; early finishes are counted. (Huge minItems/maxLength expand the grammar: masks get slow.)
const SCHEMA = {
  type: 'object',
  properties: { name: { type: 'string' }, bio: { type: 'string' }, notes: { type: 'string' } },
  required: ['name', 'bio', 'notes'],
};

type Mode = 'free' | 'host_free' | 'json_schema' | 'json_schema_host';
interface Row { batch: number; mode: Mode; msPerStep: number; tokensPerSec: number; matcherUsPerToken: number | null; earlyFinished: number }

interface Acc { ns: bigint; n: number; active: number; since: bigint }

/** Wraps a constraint to time its prepare() (the union of concurrent prepares: the step's wall time in
 * them) and accept() calls. */
function timedConstraint(c: TokenConstraint, acc: Acc): TokenConstraint {
  return {
    get mask() { return c.mask; },
    get ready() { return c.ready; },
    async prepare() {
      if (acc.active++ === 0) acc.since = process.hrtime.bigint();
      await c.prepare();
      if (--acc.active === 0) acc.ns += process.hrtime.bigint() - acc.since;
    },
    accept(id: number) {
      const t = process.hrtime.bigint();
      const ok = c.accept(id);
      acc.ns += process.hrtime.bigint() - t;
      acc.n++;
      return ok;
    },
    isTerminated: () => c.isTerminated(),
    dispose: () => c.dispose(),
  };
}

export async function runStructuredBench(model = 'pdserve-demo', batches = [1, 32], tokens = 64, device = 'cpu'): Promise<Row[]> {
  const resolved = await resolveModel(model, { loadFormat: 'dummy' });
  const created = await createEngine({ resolved, engine: { device, maxNumSeqs: Math.max(...batches), seed: 0 } });
  const tok = created.client.tokenizer;
  const grammar = await createGrammarService(created.tokenizerSource.tokenizerJsonPath, created.client.model.vocabSize, tok.eosTokenIds.length ? tok.eosTokenIds : created.modelConfig.eosTokenIds);
  const spec = { kind: 'json_schema' as const, schema: JSON.stringify(SCHEMA), anyWhitespace: false };
  await grammar.compile(spec, 'bench');
  const rows: Row[] = [];
  let n = 0;
  try {
    for (const batch of batches) {
      const modes: Mode[] = ['free', 'host_free', 'json_schema', 'json_schema_host'];
      for (const mode of [...modes, ...modes]) {
        const grammarRow = mode === 'json_schema' || mode === 'json_schema_host';
        if (mode === 'json_schema_host') process.env.PDSERVE_GRAMMAR_MASK_HOST = '1';
        else delete process.env.PDSERVE_GRAMMAR_MASK_HOST;
        const acc: Acc = { ns: 0n, n: 0, active: 0, since: 0n };
        let early = 0;
        const reqs: GenerateRequest[] = [];
        for (let i = 0; i < batch; i++) {
          const r: GenerateRequest = {
            requestId: `bench-${n++}`,
            promptTokenIds: tok.encode(`request ${n} in a batch of ${batch}:`),
            // host_free: unconstrained, but sampled on the host from copied-out logits (a tiny frequency
            // penalty keeps the row off the backend sampler): the grammar's cost is json_schema - host_free
            sampling: { ...defaultSamplingParams, temperature: 1, seed: n, maxTokens: tokens, ignoreEos: true, ...(mode === 'host_free' ? { frequencyPenalty: 1e-9 } : {}) },
          };
          if (grammarRow) r.constraint = timedConstraint(await grammar.matcher(spec, 'bench'), acc);
          reqs.push(r);
        }
        // time from every request's first token (prefill done) to the last token: decode steps only
        let firstAll = 0;
        let firsts = 0;
        const t0 = performance.now();
        await Promise.all(reqs.map(async (r) => {
          let first = true;
          let count = 0;
          for await (const out of created.client.generate(r)) {
            count += out.newTokenIds.length;
            if (first && out.newTokenIds.length) {
              first = false;
              if (++firsts === batch) firstAll = performance.now();
            }
          }
          if (count < tokens) early++;
        }));
        const t1 = performance.now();
        const steps = tokens - 1;
        const ms = (t1 - (firstAll || t0)) / steps;
        if (rows.some((x) => x.batch === batch && x.mode === mode)) {
          // second round: keep the faster (the first warms caches)
          const prev = rows.find((x) => x.batch === batch && x.mode === mode)!;
          if (ms >= prev.msPerStep) continue;
          rows.splice(rows.indexOf(prev), 1);
        }
        rows.push({ batch, mode, msPerStep: ms, tokensPerSec: (batch * 1000) / ms, matcherUsPerToken: grammarRow ? Number(acc.ns) / 1000 / Math.max(1, acc.n) : null, earlyFinished: early });
      }
    }
  } finally {
    delete process.env.PDSERVE_GRAMMAR_MASK_HOST;
    await grammar.close();
    await created.client.shutdown();
    created.native.dispose?.();
  }
  return rows;
}

export function formatStructuredBench(rows: Row[]): string {
  const lines = ['batch  mode             ms/step  tok/s     matcher us/token  early  overhead vs free'];
  const order: Mode[] = ['free', 'host_free', 'json_schema', 'json_schema_host'];
  for (const r of [...rows].sort((a, b) => a.batch - b.batch || order.indexOf(a.mode) - order.indexOf(b.mode))) {
    const free = rows.find((x) => x.batch === r.batch && x.mode === 'free')!;
    lines.push(`${String(r.batch).padEnd(6)} ${r.mode.padEnd(16)} ${r.msPerStep.toFixed(2).padStart(7)}  ${r.tokensPerSec.toFixed(1).padStart(8)}  ${r.matcherUsPerToken === null ? '-'.padStart(16) : r.matcherUsPerToken.toFixed(1).padStart(16)}  ${String(r.earlyFinished).padStart(5)}  ${r.mode === 'free' ? '' : `${(((r.msPerStep - free.msPerStep) / free.msPerStep) * 100).toFixed(1)} %`}`);
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [model, batches, tokens, device] = process.argv.slice(2);
  const rows = await runStructuredBench(model ?? 'pdserve-demo', (batches ?? '1,32').split(',').map(Number), Number(tokens ?? 64), device ?? 'cpu');
  console.log(formatStructuredBench(rows));
}
