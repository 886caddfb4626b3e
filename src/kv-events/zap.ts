// The process's ZeroMQ ZAP handler (RFC 27) for the KV-event sockets: a REP socket on
// inproc://zeromq.zap.01 that libzmq asks about every CURVE handshake in this process. It admits a
// client of the ZAP domain KV_EVENTS_ZAP_DOMAIN only when its long-term public key is one of the
// registered keys (curve.ts: the client key derived from the internal secret); everything else gets 400.
// One handler per process (libzmq allows one), shared by every publisher; acquire/release count users.
import * as zmq from 'zeromq';
import { getLogger } from '../util/logger.js';

const log = getLogger('kv-events');
export const KV_EVENTS_ZAP_DOMAIN = 'pdserve-kv-events';
const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';

/** Z85 text -> 32 raw bytes (the form ZAP requests carry CURVE keys in). */
export function z85Decode(s: string): Buffer {
  const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
  if (s.length % 5 !== 0) throw new Error('z85Decode: length must be a multiple of 5');
  const out = Buffer.alloc((s.length / 5) * 4);
  for (let i = 0, o = 0; i < s.length; i += 5, o += 4) {
    let v = 0;
    for (let j = 0; j < 5; j++) {
      const d = Z85.indexOf(s[i + j]!);
      if (d < 0) throw new Error('z85Decode: bad character');
      v = v * 85 + d;
    }
    out.writeUInt32BE(v >>> 0, o);
  }
  return out;
}

class ZapHandler {
  /** hex of admitted client public keys -> number of holders */
  readonly admitted = new Map<string, number>();
  private readonly sock = new zmq.Reply({ linger: 0 });
  private closed = false;
  readonly ready: Promise<void>;

  constructor() {
    this.ready = this.bind().then(() => void this.run());
  }

  // A handler closed a moment ago still holds the inproc name until libzmq's I/O thread lets go of it.
  private async bind(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.sock.bind(ZAP_ENDPOINT);
      } catch (e) {
        if ((e as { code?: string }).code !== 'EADDRINUSE' || attempt >= 40) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      let req: Buffer[];
      try {
        req = await this.sock.receive();
      } catch {
        return; // closed
      }
      // [version, request id, domain, address, routing id, mechanism, credentials...]
      const id = req[1] ?? Buffer.alloc(0);
      const domain = req[2]?.toString() ?? '';
      const mechanism = req[5]?.toString() ?? '';
      const key = req[6];
      const ok = req[0]?.toString() === '1.0' && domain === KV_EVENTS_ZAP_DOMAIN && mechanism === 'CURVE' && key?.length === 32 && this.admitted.has(key.toString('hex'));
      if (!ok) {
        deniedTotal++;
        const now = Date.now();
        if (now - lastDeniedLog > 10_000) lastDeniedLog = now, log.warn(`KV events: refused a subscriber from ${req[3]?.toString() ?? '?'} (${mechanism || 'no mechanism'}: not holding this deployment's internal secret)`);
      }
      try {
        await this.sock.send(['1.0', id, ok ? '200' : '400', ok ? 'OK' : 'not admitted', '', '']);
      } catch {
        return;
      }
    }
  }

  close(): void {
    this.closed = true;
    this.sock.close();
  }
}

let handler: ZapHandler | null = null;
let deniedTotal = 0;
let lastDeniedLog = 0; // refusals are logged at most every 10 s (a refused client keeps reconnecting)

/** Admits `clientPublicKey` (Z85) until the returned release() is called. */
export async function admitClientKey(clientPublicKey: string): Promise<() => void> {
  handler ??= new ZapHandler();
  const h = handler;
  await h.ready;
  const k = z85Decode(clientPublicKey).toString('hex');
  h.admitted.set(k, (h.admitted.get(k) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (h.admitted.get(k) ?? 1) - 1;
    if (n > 0) h.admitted.set(k, n);
    else h.admitted.delete(k);
    if (h.admitted.size === 0 && handler === h) {
      h.close();
      handler = null;
    }
  };
}

/** Handshakes refused by this process's handler so far (tests, metrics). */
export function zapDenied(): number {
  return deniedTotal;
}
