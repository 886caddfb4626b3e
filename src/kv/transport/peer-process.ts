// A standalone tcp KV transport endpoint over a synthetic KV region, run as its own process (possibly
// inside a network namespace) by the two-process tests and by the benchmark (tcp-bench.ts).
//   node peer-process.js serve --internal-secret-file F [--host H] --shape JSON [--seed S]
//        prints {"event":"listening","host","port","blastPort","instanceId"}; also serves a raw TCP
//        blast of the same region (the baseline: the same bytes, no protocol) on blastPort. Prints {"event":"read-start"}
//        when it starts answering a READ. stdin lines: "stats" -> {"event":"stats",...}; EOF -> exit.
//   node peer-process.js read --internal-secret-file F --peer H:P --shape JSON [--verify-seed S]
//        [--iters N] [--blast-port P] [--connections C] [--timeout-ms T]
//        reads every block of the peer's region into its own, N times (plus N raw blasts of the same
//        bytes over the same number of connections, interleaved), printing one JSON line per run and
//        {"event":"verified","ok"} when asked; then waits for "again" or EOF on stdin (link-cut tests).
// shape: {"model","kvDtype","numLayers","numKvHeads","headDim","blockSize","numBlocks"}; rowBytes is
// numKvHeads*headDim*dtype bytes. Regions are filled with fillPattern(seed) (seed 0: a cheap constant).
import net from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { resolveInternalSecret } from '../../security/internal-secret.js';
import { regionOfShape, type PeerShape } from './pattern.js';
import { TcpTransport } from './tcp-transport.js';
import { KvTransportError } from './transport.js';

const log = { debug() {}, info: (m: string) => console.error(m), warn: (m: string) => console.error(m), error: (m: string) => console.error(m) };
const emit = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
const SEND_SLICE = 32 * 1024 * 1024;

/**
 * Raw blast server (the baseline): each request is u64 offset, u64 length (LE); it answers with those
 * bytes of the region, written straight from it in SEND_SLICE pieces with backpressure. No framing,
 * no authentication: the same bytes over plain sockets.
 */
function blastServer(host: string, region: Uint8Array): Promise<net.Server> {
  const srv = net.createServer({ noDelay: true }, (s) => {
    s.on('error', () => undefined);
    let hdr = Buffer.alloc(0);
    let busy = false;
    const pump = async () => {
      if (busy) return;
      busy = true;
      while (hdr.length >= 16 && !s.destroyed) {
        let off = Number(hdr.readBigUInt64LE(0));
        const end = off + Number(hdr.readBigUInt64LE(8));
        hdr = hdr.subarray(16);
        if (end > region.byteLength) return void s.destroy();
        while (off < end && !s.destroyed) {
          const n = Math.min(end - off, SEND_SLICE);
          const more = s.write(Buffer.from(region.buffer, region.byteOffset + off, n));
          off += n;
          if (!more) await new Promise((r) => s.once('drain', r).once('close', r));
        }
      }
      busy = false;
    };
    s.on('data', (c: Buffer) => {
      hdr = Buffer.concat([hdr, c]);
      void pump();
    });
  });
  return new Promise((resolve) => srv.listen(0, host, () => resolve(srv)));
}

/** Opens `n` raw connections; blast() pulls the whole region, stripe i over connection i, straight into it. */
async function blastClient(host: string, port: number, n: number, region: Uint8Array): Promise<{ blast(): Promise<number>; close(): void }> {
  type E = { s: net.Socket; at: number; end: number; done: (() => void) | null };
  const socks: E[] = [];
  const scratch = Buffer.alloc(64 * 1024);
  for (let i = 0; i < n; i++) {
    const e: E = { s: null as unknown as net.Socket, at: 0, end: 0, done: null };
    e.s = net.connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: () => (e.at < e.end ? Buffer.from(region.buffer, region.byteOffset + e.at, e.end - e.at) : scratch),
        callback: (got: number) => {
          e.at += got;
          if (e.at >= e.end && e.done) {
            const d = e.done;
            e.done = null;
            d();
          }
          return true;
        },
      },
    });
    await new Promise<void>((resolve, reject) => e.s.once('connect', resolve).once('error', reject));
    socks.push(e);
  }
  const total = region.byteLength;
  return {
    async blast(): Promise<number> {
      const t0 = performance.now();
      await Promise.all(
        socks.map(
          (e, i) =>
            new Promise<void>((resolve) => {
              e.at = Math.floor((i * total) / n);
              e.end = Math.floor(((i + 1) * total) / n);
              e.done = resolve;
              const req = Buffer.alloc(16);
              req.writeBigUInt64LE(BigInt(e.at), 0);
              req.writeBigUInt64LE(BigInt(e.end - e.at), 8);
              e.s.write(req);
            }),
        ),
      );
      return performance.now() - t0;
    },
    close: () => socks.forEach((e) => e.s.destroy()),
  };
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  const { values: a } = parseArgs({
    args: process.argv.slice(3),
    options: {
      'internal-secret-file': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      peer: { type: 'string' },
      'blast-port': { type: 'string' },
      shape: { type: 'string' },
      seed: { type: 'string', default: '0' },
      'verify-seed': { type: 'string' },
      iters: { type: 'string', default: '1' },
      connections: { type: 'string', default: '4' },
      'timeout-ms': { type: 'string', default: '30000' },
      'stall-ms': { type: 'string', default: '10000' },
    },
  });
  const secret = resolveInternalSecret(a['internal-secret-file']);
  if (!secret) throw new Error('--internal-secret-file (or PDSERVE_INTERNAL_SECRET_FILE) is required');
  const shape = JSON.parse(a.shape ?? '') as PeerShape;
  const stdin = createInterface({ input: process.stdin });
  if (mode === 'serve') {
    const region = regionOfShape(shape, Number(a.seed));
    const t = new TcpTransport({
      key: secret.key,
      host: a.host,
      log,
      stallTimeoutMs: Number(a['stall-ms']),
      hooks: { authorize: (op) => (op === 'read' && emit({ event: 'read-start' }), true) },
    });
    t.registerRegion(region);
    const addr = await t.listen();
    const blast = await blastServer(a.host!, region.bytes);
    emit({ event: 'listening', host: addr.host, port: addr.port, blastPort: (blast.address() as net.AddressInfo).port, instanceId: t.instanceId });
    stdin.on('line', (l) => {
      if (l.trim() === 'stats') emit({ event: 'stats', ...t.stats() });
    });
    await new Promise((r) => stdin.once('close', r));
    blast.close();
    await t.close();
    return;
  }
  if (mode === 'read') {
    const [host, port] = [a.peer!.slice(0, a.peer!.lastIndexOf(':')), Number(a.peer!.slice(a.peer!.lastIndexOf(':') + 1))];
    const region = regionOfShape(shape, 0);
    region.bytes.fill(0);
    const conns = Number(a.connections);
    const t = new TcpTransport({ key: secret.key, log, connectionsPerPeer: conns, transferTimeoutMs: Number(a['timeout-ms']) });
    t.registerRegion(region);
    const peer = { host, port };
    const info = await t.handshake(peer);
    emit({ event: 'handshake', instanceId: info.instanceId });
    const all = Int32Array.from({ length: Math.min(shape.numBlocks, info.layout.numBlocks) }, (_, i) => i);
    const blaster = a['blast-port'] ? await blastClient(host, Number(a['blast-port']), conns, region.bytes) : null;
    const runOnce = async (i: number) => {
      const t0 = performance.now();
      try {
        const r = await t.read(peer, all, all, { requestId: `bench-${i}` });
        emit({ event: 'read', bytes: r.bytes, ms: r.ms, connections: r.connections });
      } catch (e) {
        const reason = e instanceof KvTransportError ? e.reason : 'error';
        emit({ event: 'error', reason, message: (e as Error).message, ms: performance.now() - t0, stats: t.stats() });
        return;
      }
      if (blaster) emit({ event: 'blast', bytes: region.bytes.byteLength, ms: await blaster.blast() });
    };
    const iters = Number(a.iters);
    for (let i = 0; i < iters; i++) await runOnce(i);
    if (a['verify-seed']) {
      const want = regionOfShape(shape, Number(a['verify-seed']));
      emit({ event: 'verified', ok: Buffer.from(want.bytes.buffer, want.bytes.byteOffset, want.bytes.byteLength).equals(Buffer.from(region.bytes.buffer, region.bytes.byteOffset, region.bytes.byteLength)) });
    }
    emit({ event: 'stats', ...t.stats() });
    let n = iters;
    stdin.on('line', (l) => {
      if (l.trim() === 'again') void runOnce(n++).then(() => emit({ event: 'stats', ...t.stats() }));
    });
    await new Promise((r) => stdin.once('close', r));
    blaster?.close();
    await t.close();
    return;
  }
  throw new Error(`unknown mode ${JSON.stringify(mode)} (serve | read)`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`peer-process: ${(e as Error).message}`);
    process.exit(1);
  },
);
