// A scripted engine stand-in on loopback for proxy tests: records each request and whether the
// proxy closed its socket before the answer finished. GET /health answers 200 unless `healthy` is false.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';

export interface StubRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  raw: string;
  body: any; // parsed JSON, or undefined
  /** resolves true when the socket closed before the response finished (the proxy aborted), false on normal finish */
  closedEarly: Promise<boolean>;
}

export type StubHandler = (req: StubRequest, res: ServerResponse) => void | Promise<void>;

export interface Stub {
  url: string;
  requests: StubRequest[]; // generation requests only (not /health)
  healthy: boolean;
  healthChecks: number;
  close(): Promise<void>;
}

export async function startStub(handler: StubHandler): Promise<Stub> {
  const stub: Stub = { url: '', requests: [], healthy: true, healthChecks: 0, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (path === '/health') {
        stub.healthChecks++;
        res.writeHead(stub.healthy ? 200 : 503).end();
        return;
      }
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: any;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = undefined;
      }
      const closedEarly = new Promise<boolean>((resolve) => res.on('close', () => resolve(!res.writableFinished)));
      const rec: StubRequest = { method: req.method ?? 'GET', path, headers: req.headers, raw, body, closedEarly };
      if (path !== '/v1/models') stub.requests.push(rec);
      void Promise.resolve(handler(rec, res)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stub.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return stub;
}

/** A loopback URL that refuses connections (a port bound, then released). */
export async function deadUrl(): Promise<string> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A completion-shaped answer naming who produced it. */
export function completion(who: string, extra: Record<string, unknown> = {}) {
  return { id: 'cmpl-1', object: 'text_completion', model: 'm', choices: [{ index: 0, text: who, finish_reason: 'length' }], ...extra };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves 'timeout' after ms without keeping the process alive (for Promise.race guards). */
export const timeoutAfter = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
