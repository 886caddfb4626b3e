// POST /v1/kv/push-target: a decoder (TcpConnector, push) tells the prefiller where a request's KV goes.
// Body: {push_id, first_block, block_ids, num_tokens, host, port, engine_id}: the prefiller writes its
// blocks first_block.. of the request tagged push_id into the decoder's blocks block_ids (in order) over
// the tcp transport at host:port (instance engine_id), tokens [0, num_tokens) being what the decoder
// needs. Reply: {accepted: true, engine_id, host, port} = the prefiller's transport (the decoder's
// heartbeats go there). 400 on a bad body or when push_id already has a target, 404 when the push is
// over (dropped or expired), 503 when the prefiller is not serving pushes. Mounted through the connector
// seam (KvConnector.attachServer); the server admits only signed internal requests to /v1/kv/*.
import { z } from 'zod';
import type { ConnectorRoute } from '../../engine/connector/base.js';

export const PUSH_TARGET_PATH = '/v1/kv/push-target';

export const pushTargetSchema = z
  .object({
    push_id: z.string().min(1).max(128),
    first_block: z.number().int().min(0).max(1 << 20),
    block_ids: z.array(z.number().int().min(0).max(1 << 30)).max(1 << 20),
    num_tokens: z.number().int().min(0).max(1 << 26),
    host: z.string().min(1).max(255),
    port: z.number().int().min(1).max(65535),
    engine_id: z.string().min(1).max(128),
  })
  .strict();

export type PushTargetBody = z.infer<typeof pushTargetSchema>;

export interface PushTargetReply {
  accepted: true;
  engine_id: string;
  host: string;
  port: number;
}

/** What the route needs of the connector: accept (or throw a PdsError). */
export interface PushTargetSink {
  acceptPushTarget(t: PushTargetBody): PushTargetReply;
}

export function pushTargetRoute(sink: PushTargetSink): ConnectorRoute {
  return {
    path: PUSH_TARGET_PATH,
    handle: (body) => sink.acceptPushTarget(pushTargetSchema.parse(body)),
  };
}
