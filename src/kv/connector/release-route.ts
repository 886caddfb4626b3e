// POST /v1/kv/release {request_id}: a decoder has copied a request's KV point to point (P2pConnector);
// the prefiller frees the blocks it held for it. 400 on a bad body, 404 when nothing is held under that id
// (released already, or freed by its timeout). Mounted by the serving process through the connector seam
// (KvConnector.attachServer); the server admits only signed internal requests to it.
import { z } from 'zod';
import type { ConnectorRoute } from '../../engine/connector/base.js';
import { PdsError } from '../../util/errors.js';

/** What the route needs of the connector (P2pConnector.releaseHeld). */
export interface KvReleaser {
  releaseHeld(requestId: string): boolean;
}

const bodySchema = z.object({ request_id: z.string().min(1).max(512) }).strict();

export function kvReleaseRoute(releaser: KvReleaser): ConnectorRoute {
  return {
    path: '/v1/kv/release',
    handle(body) {
      const { request_id } = bodySchema.parse(body);
      if (!releaser.releaseHeld(request_id)) throw new PdsError('PDS_ERR_NOT_FOUND', `no KV is held for request ${request_id}`, 'request_id');
      return { released: true, request_id };
    },
  };
}
