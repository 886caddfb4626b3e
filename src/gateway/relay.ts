// Relays a decoder's response to the client as it arrives: one write (one flush) per upstream chunk,
// waiting for 'drain' under backpressure. Shapes: SSE or JSON, status and content-type kept.
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';

export interface RelayResult {
  firstByteMs: number | null; // performance.now() of the first body chunk
  lastByteMs: number | null; // performance.now() of the last body chunk
  chunks: number;
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
  let lastByteMs: number | null = null;
  let chunks = 0;
  try {
    for await (const chunk of res.body) {
      lastByteMs = performance.now();
      firstByteMs ??= lastByteMs;
      chunks++;
      if (out.destroyed) return { firstByteMs, lastByteMs, chunks, completed: false, error: null };
      if (!out.write(chunk)) await waitDrain(out);
    }
  } catch (error) {
    return { firstByteMs, lastByteMs, chunks, completed: false, error };
  }
  out.end();
  return { firstByteMs, lastByteMs, chunks, completed: true, error: null };
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
