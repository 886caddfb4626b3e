// Before a run: make sure the server answers, and learn the model when --model is absent
// (vLLM's get_first_model_from_server: /v1/models data[0] -> (id, root)).
import { request } from 'undici';
import { PdsError } from '../util/errors.js';

export interface ProbeResult {
  /** data[0].id: the name to send in requests. */
  modelName: string | null;
  /** data[0].root (falls back to id): the model id recorded in results and used for the tokenizer. */
  modelId: string | null;
}

export async function probeServer(baseUrl: string, timeoutMs = 5000): Promise<ProbeResult> {
  const down = (why: string) =>
    new PdsError('PDS_ERR_UNAVAILABLE', `cannot reach the server at ${baseUrl} (${why}); is it running? Start it with \`pdserve serve\` or fix --base-url/--host/--port`);
  let models: { statusCode: number; body: string };
  try {
    const auth: Record<string, string> = process.env.OPENAI_API_KEY ? { authorization: `Bearer ${process.env.OPENAI_API_KEY}` } : {}; // as request.ts
    const r = await request(`${baseUrl}/v1/models`, { method: 'GET', headers: auth, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) });
    models = { statusCode: r.statusCode, body: await r.body.text() };
  } catch (e) {
    const err = e as { code?: string; cause?: { code?: string }; message?: string };
    throw down(err.code ?? err.cause?.code ?? err.message ?? String(e));
  }
  if (models.statusCode === 200) {
    try {
      const d = JSON.parse(models.body)?.data?.[0];
      if (d?.id) return { modelName: String(d.id), modelId: String(d.root ?? d.id) };
    } catch { /* fall through */ }
    return { modelName: null, modelId: null };
  }
  // No model list: accept a healthy /health instead.
  try {
    const h = await request(`${baseUrl}/health`, { method: 'GET', signal: AbortSignal.timeout(timeoutMs) });
    await h.body.dump();
    if (h.statusCode === 200) return { modelName: null, modelId: null };
    throw down(`GET /v1/models -> ${models.statusCode}, GET /health -> ${h.statusCode}`);
  } catch (e) {
    if (e instanceof PdsError) throw e;
    throw down(`GET /v1/models -> ${models.statusCode}`);
  }
}
