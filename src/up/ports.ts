// Free loopback ports, found by binding port 0. A port is released before the child binds it, so
// another process could take it in between; the child then fails to start and `up` reports it.
import { createServer, type AddressInfo } from 'node:net';

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, host, resolve);
  });
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** n distinct free ports (each held until all are found, so they differ). */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, host, resolve);
      });
      servers.push(s);
      ports.push((s.address() as AddressInfo).port);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
  return ports;
}

/** Throws a clear error when host:port cannot be bound (e.g. another proxy already runs there). */
export async function assertPortFree(host: string, port: number): Promise<void> {
  const s = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, resolve);
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new Error(`cannot listen on ${host}:${port} (${code ?? (e as Error).message}); choose another --port`);
  }
  await new Promise<void>((r) => s.close(() => r()));
}
