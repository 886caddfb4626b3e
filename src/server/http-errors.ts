// Maps anything thrown while serving a request to an HTTP status and an OpenAI-style error body
// {"error":{"message","type","param","code"}}. PdsError carries its own status (util/errors.ts);
// zod issues become 400 naming the offending field; fastify's own 4xx (bad JSON, body too large) keep
// their status; everything else is a 500 whose message is logged, not leaked beyond its text.
import { ZodError } from 'zod';
import { NoChatTemplateError } from '../tokenizer/types.js';
import { PdsError, openAiErrorBody, wireCode } from '../util/errors.js';

export interface HttpError {
  status: number;
  body: ReturnType<typeof openAiErrorBody>;
}

export function badRequest(message: string, param: string | null = null): PdsError {
  return new PdsError('PDS_ERR_BAD_REQUEST', message, param);
}

export function zodToPdsError(e: ZodError): PdsError {
  const issue = e.issues[0];
  if (!issue) return badRequest('invalid request');
  const param = issue.path.map(String).join('.') || null;
  return badRequest(param ? `${param}: ${issue.message}` : issue.message, param);
}

export function toHttpError(e: unknown): HttpError {
  if (e instanceof ZodError) e = zodToPdsError(e);
  if (e instanceof NoChatTemplateError) e = badRequest(e.message, 'messages');
  if (e instanceof PdsError) {
    return { status: e.httpStatus, body: openAiErrorBody(e.httpStatus, e.message, e.param, wireCode(e.code)) };
  }
  const err = e as { statusCode?: unknown; message?: unknown };
  const status = typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
  const message = typeof err?.message === 'string' && err.message ? err.message : 'internal server error';
  return { status, body: openAiErrorBody(status, message) };
}
