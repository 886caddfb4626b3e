// Connectors by name (vLLM's kv_connector). The KV layer registers its implementations here.
import type { ConnectorFactory } from '../create-engine.js';
import { PdsError } from '../../util/errors.js';
import { NoopConnector } from './noop.js';

const factories = new Map<string, ConnectorFactory>();

export function registerConnector(name: string, f: ConnectorFactory): void {
  factories.set(name, f);
}

registerConnector('NoopConnector', async (cfg) => new NoopConnector(cfg.kv_role));

export const connectorFactory: ConnectorFactory = async (cfg, ctx) => {
  const f = factories.get(cfg.kv_connector);
  if (!f) throw new PdsError('PDS_ERR_CONFIG', `unknown kv_connector "${cfg.kv_connector}" (known: ${[...factories.keys()].join(', ')})`, 'kv_connector');
  return f(cfg, ctx);
};
