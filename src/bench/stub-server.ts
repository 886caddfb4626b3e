// A scripted OpenAI-compatible streaming server for testing and benchmarking the bench client:
// first token after ttftMs, then one token every itlMs (absolute schedule, so timer lateness does not
// accumulate), HTTP 500 for every failEvery-th request, counts requests in flight. ttftMs = itlMs = 0
// streams the whole response at once. Known per-request delays for goodput tests: request k (1-based,
// in the order bodies arrive) uses ttftCycleMs[(k-1) % len] / itlCycleMs[(k-1) % len] when given.
// prefillMs > 0 models a server with one prefill slot: each request holds it for prefillMs, FIFO,
// before its TTFT delay starts, so TTFT grows with the request rate once rate x prefillMs > 1. Serves /v1/models, /health, /v1/completions, /v1/chat/completions.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubScript {
  model: string;
  ttftMs: number;
  itlMs: number;
  /** Every k-th request (1-based count) gets HTTP 500; 0 = never. */
  failEvery: number;
  /** Every k-th request has its connection destroyed after the first token; 0 = never. */
  dropEvery: number;
  /** Add "stub_ts" (epoch ms, sub-ms precision) to every token chunk: lets a client measure its lag. */
  stamp: boolean;
  /** Per-request TTFT / ITL (ms), cycled in arrival order; override ttftMs / itlMs. */
  ttftCycleMs?: readonly number[];
  itlCycleMs?: readonly number[];
  /** Exclusive prefill time per request (ms) on a single FIFO slot; 0 = none. */
  prefillMs?: number;
}

export interface StubStats {
  requests: number;
  inFlight: number;
  maxInFlight: number;
  failed: number;
  completed: number;
}

export interface RunningStub {
  url: string;
  port: number;
  stats: StubStats;
  close(): Promise<void>;
}

const defaults: StubScript = { model: 'stub-model', ttftMs: 0, itlMs: 0, failEvery: 0, dropEvery: 0, stamp: false };

export async function startStubServer(script: Partial<StubScript> = {}, port = 0, host = '127.0.0.1'): Promise<RunningStub> {
  const s: StubScript = { ...defaults, ...script };
  const stats: StubStats = { requests: 0, inFlight: 0, maxInFlight: 0, failed: 0, completed: 0 };
  const prefill: PrefillSlot = { freeAt: 0 };
  const server: Server = createServer((req, res) => handle(req, res, s, stats, prefill));
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const p = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${p}`, port: p, stats,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const b = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) });
  res.end(b);
}

/** performance.now() ms at which the single prefill slot is free again. */
interface PrefillSlot { freeAt: number }

function handle(req: IncomingMessage, res: ServerResponse, s: StubScript, stats: StubStats, prefill: PrefillSlot): void {
  const url = req.url ?? '/';
  if (req.method === 'GET' && url === '/health') return void res.end();
  if (req.method === 'GET' && url === '/v1/models') {
    return json(res, 200, { object: 'list', data: [{ id: s.model, object: 'model', created: 0, owned_by: 'pdserve', root: s.model }] });
  }
  const chat = url === '/v1/chat/completions';
  if (req.method !== 'POST' || (!chat && url !== '/v1/completions')) return json(res, 404, { error: { message: `no route ${url}`, type: 'NotFoundError', code: 404 } });
  const parts: Buffer[] = [];
  req.on('data', (d: Buffer) => parts.push(d));
  req.on('end', () => {
    let body: { max_tokens?: number; max_completion_tokens?: number };
    try {
      body = JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch {
      return json(res, 400, { error: { message: 'body is not JSON', type: 'BadRequestError', code: 400 } });
    }
    stats.requests++;
    if (s.failEvery > 0 && stats.requests % s.failEvery === 0) {
      stats.failed++;
      return json(res, 500, { error: { message: 'scripted failure', type: 'InternalServerError', code: 500 } });
    }
    const drop = s.dropEvery > 0 && stats.requests % s.dropEvery === 0;
    const k = stats.requests - 1;
    const ttftMs = s.ttftCycleMs?.length ? s.ttftCycleMs[k % s.ttftCycleMs.length]! : s.ttftMs;
    const itlMs = s.itlCycleMs?.length ? s.itlCycleMs[k % s.itlCycleMs.length]! : s.itlMs;
    let queuedMs = 0;
    if (s.prefillMs && s.prefillMs > 0) {
      const now = performance.now();
      const start = Math.max(now, prefill.freeAt);
      prefill.freeAt = start + s.prefillMs;
      queuedMs = prefill.freeAt - now; // wait for the slot + own prefill
    }
    stream(res, { ...s, ttftMs: ttftMs + queuedMs, itlMs }, stats, chat, body.max_tokens ?? body.max_completion_tokens ?? 16, drop);
  });
}

function stream(res: ServerResponse, s: StubScript, stats: StubStats, chat: boolean, n: number, drop: boolean): void {
  stats.inFlight++;
  stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const head = chat
    ? `data: {"id":"chatcmpl-stub","object":"chat.completion.chunk","created":0,"model":${JSON.stringify(s.model)},"choices":[{"index":0,"delta":{"content":"`
    : `data: {"id":"cmpl-stub","object":"text_completion","created":0,"model":${JSON.stringify(s.model)},"choices":[{"index":0,"text":"`;
  const tail = chat ? '"},"finish_reason":null}]' : '","logprobs":null,"finish_reason":null}]';
  const token = (i: number) => head + ` t${i}` + tail + (s.stamp ? `,"stub_ts":${performance.timeOrigin + performance.now()}` : '') + '}\n\n';
  let sent = 0;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    stats.inFlight--;
    stats.completed++;
    const usage = `{"prompt_tokens":null,"completion_tokens":${n},"total_tokens":${n}}`;
    res.end(`data: {"id":"stub","choices":[],"usage":${usage}}\n\ndata: [DONE]\n\n`);
  };
  res.on('close', () => {
    if (timer) clearTimeout(timer);
    if (!closed) {
      closed = true;
      stats.inFlight--;
    }
  });
  if (chat) res.write(`data: {"id":"chatcmpl-stub","object":"chat.completion.chunk","created":0,"model":${JSON.stringify(s.model)},"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n`);
  if (drop) {
    res.write(token(sent++));
    setTimeout(() => res.destroy(), 5);
    return;
  }
  if (s.ttftMs <= 0 && s.itlMs <= 0) {
    while (sent < n) res.write(token(sent++));
    return finish();
  }
  const t0 = performance.now();
  const next = () => {
    timer = null;
    if (closed) return;
    res.write(token(sent++));
    if (sent >= n) return finish();
    timer = setTimeout(next, Math.max(0, t0 + s.ttftMs + sent * s.itlMs - performance.now()));
  };
  timer = setTimeout(next, s.ttftMs);
}
