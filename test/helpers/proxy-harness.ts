// Starts an in-process proxy on a free loopback port with background loops off (tests drive them).
import { defaultProxyConfig, type ProxyConfig } from '../../src/gateway/config.js';
import { startProxy, type RunningProxy } from '../../src/proxy/server.js';

export function testProxy(prefillers: string[], decoders: string[], over: Partial<ProxyConfig> = {}): Promise<RunningProxy> {
  return startProxy({
    ...defaultProxyConfig,
    host: '127.0.0.1',
    port: 0,
    healthIntervalMs: 0,
    statsIntervalMs: 0,
    connectTimeoutMs: 1000,
    prefillers,
    decoders,
    ...over,
  });
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
