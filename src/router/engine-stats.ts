// Scrapes each engine's /metrics every --engine-stats-interval into Upstream.engineStats (what the
// load-based policies and /metrics read). vLLM's names, with the newer ones as fallbacks:
// num_requests_running/waiting; gpu_cache_usage_perc | kv_cache_usage_perc;
// gpu_prefix_cache_hits/queries_total | prefix_cache_hits/queries_total. A failed scrape keeps the
// last stats (health checks decide ejection, not the scraper).
import type { Upstream, EngineLoad } from '../gateway/upstream.js';

const MAX_BYTES = 4 * 1024 * 1024;

/** Sums each metric over its label sets: "name{a="b"} 3" -> {name: 3}. Lines too odd to read are skipped. */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (!Number.isFinite(v)) continue;
    out.set(m[1]!, (out.get(m[1]!) ?? 0) + v);
  }
  return out;
}

export function engineLoadOf(m: Map<string, number>, at: number): EngineLoad {
  const first = (...names: string[]) => {
    for (const n of names) if (m.has(n)) return m.get(n)!;
    return 0;
  };
  return {
    running: first('vllm:num_requests_running'),
    waiting: first('vllm:num_requests_waiting'),
    kvUsage: first('vllm:gpu_cache_usage_perc', 'vllm:kv_cache_usage_perc'),
    prefixHits: first('vllm:gpu_prefix_cache_hits_total', 'vllm:prefix_cache_hits_total', 'vllm:gpu_prefix_cache_hits'),
    prefixQueries: first('vllm:gpu_prefix_cache_queries_total', 'vllm:prefix_cache_queries_total', 'vllm:gpu_prefix_cache_queries'),
    at,
  };
}

/** One scrape of one engine; false when it failed (stats kept). */
export async function scrapeEngine(u: Upstream, timeoutMs: number, headers: Record<string, string> = {}): Promise<boolean> {
  try {
    const res = await u.pool.request({ path: '/metrics', method: 'GET', headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return false;
    }
    let text = '';
    for await (const chunk of res.body) {
      text += chunk;
      if (text.length > MAX_BYTES) {
        res.body.destroy();
        return false;
      }
    }
    u.engineStats = engineLoadOf(parsePrometheus(text), Date.now());
    return true;
  } catch {
    return false;
  }
}
