// kv_transfer_params (vLLM's NIXL-style per-request params), validated at the API server into a typed
// value. The fields the connectors read are typed (null is allowed: vLLM's toy proxy sends nulls for
// "unknown yet"); other keys pass through untouched (a connector may define its own). Bounds keep a hostile
// peer's params small: ids and hosts are short strings, block ids at most 2^20.
import { z } from 'zod';

const str = (max: number) => z.string().max(max).nullish();

export const kvTransferParamsSchema = z.looseObject({
  /** producer side: keep the blocks for a decoder and answer with the params it needs */
  do_remote_decode: z.boolean().nullish(),
  /** consumer side: load the prompt's KV from the producer the other fields name */
  do_remote_prefill: z.boolean().nullish(),
  remote_engine_id: str(128),
  remote_request_id: str(256),
  remote_block_ids: z.array(z.number().int().nonnegative()).max(1 << 20).nullish(),
  remote_host: str(255),
  remote_port: z.number().int().min(1).max(65535).nullish(),
  /** P2pConnector: base64 of the producer's KV-cache handle */
  remote_ipc_handle: str(4096),
  /** TcpConnector: 'tcp' (absent: whichever transport the consumer's connector speaks) */
  remote_transport: str(32),
  tp_size: z.number().int().positive().nullish(),
  /** TcpConnector: 'push' = the decoder allocates and the prefiller writes (absent or 'pull': vLLM's pull) */
  kv_mode: z.enum(['pull', 'push']).nullish(),
  /** push: the id the proxy gave both legs; the decoder's target and the prefiller's writes name it */
  push_id: str(128),
});

export type KvTransferParams = z.infer<typeof kvTransferParamsSchema>;
