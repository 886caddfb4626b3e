// Per-HTTP-request plumbing: an AbortSignal that fires when the client disconnects before the response
// has ended (streaming or not), and request ids derived from X-Request-Id.
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Aborts when the response's connection closes before we ended the response. Uses the response's
 * 'close' (not the request body stream's, which fires once the body has been read).
 */
export function disconnectSignal(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  const res = reply.raw;
  const onClose = () => {
    if (!res.writableEnded) ac.abort();
  };
  res.once('close', onClose);
  if (res.destroyed || res.socket?.destroyed) ac.abort();
  return ac.signal;
}

/** The client's X-Request-Id, if it sent a usable one. */
export function clientRequestId(request: FastifyRequest): string | null {
  const h = request.headers['x-request-id'];
  const v = Array.isArray(h) ? h[0] : h;
  return v && v.length <= 256 ? v : null;
}

/** Engine request ids currently in flight on one server; keeps ids unique when clients reuse them. */
export class RequestIds {
  private readonly live = new Set<string>();

  /** Reserves `wanted`, or `wanted` plus a random suffix when it is already in flight. */
  acquire(wanted: string): string {
    let id = wanted;
    while (this.live.has(id)) id = `${wanted}-${randomUUID().slice(0, 8)}`;
    this.live.add(id);
    return id;
  }

  release(id: string): void {
    this.live.delete(id);
  }
}

export function randomId(): string {
  return randomUUID().replaceAll('-', '');
}
