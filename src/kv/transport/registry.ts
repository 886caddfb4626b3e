// KV transports by name. Each implementation registers its factory here; callers pick one by the
// name in their config (kv_connector_extra_config.transport, `up --kv-transfer tcp`).
// Kept for an RDMA (ibverbs/UCX) transport: it would take the same options plus its device names, and
// run the same conformance suite (conformance.ts).
import { TcpTransport, type TcpTransportOptions } from './tcp-transport.js';
import { KvTransportError, type KvTransport } from './transport.js';

export type TransportOptions = TcpTransportOptions;
export type TransportFactory = (opts: TransportOptions) => KvTransport;

const factories = new Map<string, TransportFactory>([['tcp', (o) => new TcpTransport(o)]]);

export function registerTransport(name: string, f: TransportFactory): void {
  if (factories.has(name)) throw new Error(`KV transport ${name} is already registered`);
  factories.set(name, f);
}

export function createTransport(name: string, opts: TransportOptions): KvTransport {
  const f = factories.get(name);
  if (!f) throw new KvTransportError('protocol', `unknown KV transport ${JSON.stringify(name)} (known: ${transportNames().join(', ')})`);
  return f(opts);
}

export function transportNames(): string[] {
  return [...factories.keys()];
}
