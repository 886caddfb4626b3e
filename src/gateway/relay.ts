// Relays a decoder's response to the client as it arrives: one write (one flush) per upstream chunk,
// waiting for 'drain' under backpressure. Shapes: SSE or JSON, status and content-type kept.
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';

export interface RelayResult {
  firstByteMs: number | null; // performance.now() of the first body chunk
  completed: boolean; // false: the upstream body failed (timeout, socket) or the client went away
  error: unknown;
}

export async function relayResponse(res: Dispatcher.ResponseData, out: ServerResponse, requestId: string): Promise<RelayResult> {
  const contentType = String(res.headers['content-type'] ?? 'application/json');
  const headers: Record<string, string> = { 'content-type': contentType, 'x-request-id': requestId };
  if (contentType.startsWith('text/event-stream')) {
    headers['cache-control'] = 'no-cache';
    headers['x-accel-buffering'] = 'no';
  }
  out.writeHead(res.statusCode, headers);
  out.flushHeaders();
  let firstByteMs: number | null = null;
  try {
    for await (const chunk of res.body) {
      if (firstByteMs === null) firstByteMs = performance.now();
      if (out.destroyed) return { firstByteMs, completed: false, error: null };
      if (!out.write(chunk)) await waitDrain(out);
    }
  } catch (error) {
    return { firstByteMs, completed: false, error };
  }
  out.end();
  return { firstByteMs, completed: true, error: null };
}

function waitDrain(out: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
  });
}
