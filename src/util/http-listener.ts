// Limits every pdserve HTTP listener applies (engine API server, proxy), so no client can hold the
// server's sockets or memory: a time to send the headers, a time to send the whole request (slow bodies),
// an idle keep-alive time, a body size and a connection cap. Time limits run from Node's own connection
// checker (every checkIntervalMs); a response being generated is never cut by them (they only concern
// receiving the request), so long generations and streams are unaffected.
import type { Server } from 'node:http';
import type { FastifyServerOptions } from 'fastify';

export interface ListenerLimits {
  headersTimeoutMs: number; // connect -> end of headers (idle fresh connections too); 0 = Node's default
  requestTimeoutMs: number; // connect -> end of body; > headersTimeoutMs
  keepAliveTimeoutMs: number; // idle time between requests on one connection
  maxConnections: number; // open sockets; beyond it new connections are closed at once (0 = unlimited)
  bodyLimitBytes: number;
  checkIntervalMs: number; // how often Node checks the two timeouts above
}

export const defaultListenerLimits: ListenerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000, // uvicorn's (vLLM's) --timeout-keep-alive
  maxConnections: 4096,
  bodyLimitBytes: 8 * 1024 * 1024,
  checkIntervalMs: 1_000,
};

/** The options createServer and fastify need; pass the result into Fastify({...}). */
export function fastifyListenerOptions(l: ListenerLimits): Pick<FastifyServerOptions, 'bodyLimit' | 'keepAliveTimeout' | 'requestTimeout'> & { http: Record<string, number> } {
  const requestTimeout = Math.max(l.requestTimeoutMs, l.headersTimeoutMs + 1);
  return {
    bodyLimit: l.bodyLimitBytes,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    requestTimeout,
    http: { headersTimeout: l.headersTimeoutMs, requestTimeout, keepAliveTimeout: l.keepAliveTimeoutMs, connectionsCheckingInterval: l.checkIntervalMs },
  };
}

/** What cannot go through fastify's options: the connection cap (and headersTimeout, again, after creation). */
export function applyListenerLimits(server: Server, l: ListenerLimits): void {
  if (l.maxConnections > 0) server.maxConnections = l.maxConnections;
  server.headersTimeout = l.headersTimeoutMs;
}

/** Checks a limits object once (config errors name the field). */
export function checkListenerLimits(l: ListenerLimits): ListenerLimits {
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isFinite(v) || v < 0) throw new Error(`listener limit ${k} must be a number >= 0, got ${v}`);
  }
  if (l.headersTimeoutMs <= 0 || l.requestTimeoutMs <= 0) throw new Error('header and request timeouts must be > 0');
  if (l.bodyLimitBytes < 1024) throw new Error(`body limit must be at least 1 KiB, got ${l.bodyLimitBytes}`);
  return l;
}
