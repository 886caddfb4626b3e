// The proxy's view of the kv-server (`--kv-server HOST:PORT`): a TCP connect per health round. The
// deployment still answers without it (decoders compute prompts themselves), so it is reported, not routed on.
import { connect } from 'node:net';
import { PdsError } from '../util/errors.js';

export class KvServerProbe {
  readonly address: string; // "host:port"
  private readonly host: string;
  private readonly port: number;
  healthy = true;
  lastError: string | null = null;

  constructor(address: string) {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address.trim().replace(/^pdkv:\/\//, ''));
    const port = m ? Number(m[3]) : NaN;
    if (!m || !(port >= 1 && port <= 65535)) throw new PdsError('PDS_ERR_CONFIG', `--kv-server must be HOST:PORT, got ${address}`);
    this.host = (m[1] ?? m[2])!;
    this.port = port;
    this.address = `${m[1] ? `[${m[1]}]` : m[2]}:${port}`;
  }

  /** One TCP connect within timeoutMs; updates healthy/lastError; returns whether the state changed. */
  async check(timeoutMs: number): Promise<boolean> {
    const err = await new Promise<string | null>((resolve) => {
      const s = connect({ host: this.host, port: this.port });
      const t = setTimeout(() => {
        s.destroy();
        resolve(`no connection within ${timeoutMs} ms`);
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        s.destroy();
        resolve(null);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        resolve(e.code ?? e.message);
      });
    });
    const was = this.healthy;
    this.healthy = err === null;
    this.lastError = err;
    return was !== this.healthy;
  }

  toJSON(): { address: string; healthy: boolean; last_error: string | null } {
    return { address: this.address, healthy: this.healthy, last_error: this.lastError };
  }
}
