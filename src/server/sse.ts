// Server-sent events over a hijacked Node response: `data: {json}\n\n` per chunk, written at once
// (no buffering), waiting for 'drain' under backpressure, `data: [DONE]\n\n` at the end.
import type { FastifyReply } from 'fastify';
import { ClientGone } from './engine-run.js';
import { toHttpError } from './http-errors.js';

export class SseWriter {
  private readonly res: FastifyReply['raw'];

  constructor(reply: FastifyReply, headers: Record<string, string> = {}) {
    reply.hijack();
    this.res = reply.raw;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    this.res.on('error', () => {}); // a write racing a disconnect must not become an uncaught error
    this.res.socket?.setNoDelay(true);
    this.res.flushHeaders();
  }

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  /** Writes one event; resolves once the socket can take more (or the client is gone). */
  async send(data: unknown): Promise<void> {
    await this.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  /** One named event (`event: NAME` + `data:`), as the Responses API streams. */
  async sendEvent(event: string, data: unknown): Promise<void> {
    await this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  async done(): Promise<void> {
    await this.write('data: [DONE]\n\n');
    if (!this.closed) this.res.end();
  }

  /** Ends the stream without [DONE] (the client is gone or the server is closing). */
  end(): void {
    if (!this.closed) this.res.end();
  }

  private write(s: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.res.write(s)) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        this.res.off('drain', finish);
        this.res.off('close', finish);
        resolve();
      };
      this.res.on('drain', finish);
      this.res.on('close', finish);
    });
  }
}

/** An error after the stream started: one `data: {"error":...}` event, then [DONE] (vLLM's behaviour). */
export async function streamError(sse: SseWriter, e: unknown): Promise<void> {
  if (e instanceof ClientGone) return sse.end();
  await sse.send(toHttpError(e).body);
  await sse.done();
}
