// Typed errors with stable codes, mapped once to HTTP statuses (server/http-errors.ts uses httpStatus).
export type ErrorCode =
  | 'PDS_ERR_BAD_REQUEST'
  | 'PDS_ERR_UNAUTHORIZED'
  | 'PDS_ERR_FORBIDDEN'
  | 'PDS_ERR_PAYLOAD_TOO_LARGE'
  | 'PDS_ERR_MODEL_NOT_FOUND'
  | 'PDS_ERR_CONTEXT_LENGTH'
  | 'PDS_ERR_NOT_FOUND'
  | 'PDS_ERR_OVERLOADED'
  | 'PDS_ERR_UNAVAILABLE'
  | 'PDS_ERR_UPSTREAM'
  | 'PDS_ERR_TIMEOUT'
  | 'PDS_ERR_KV_TIMEOUT'
  | 'PDS_ERR_KV_LOAD_FAILED'
  | 'PDS_ERR_CONFIG'
  | 'PDS_ERR_MODEL_LOAD'
  | 'PDS_ERR_INTERNAL';

const statusOf: Record<ErrorCode, number> = {
  PDS_ERR_BAD_REQUEST: 400,
  PDS_ERR_UNAUTHORIZED: 401,
  PDS_ERR_FORBIDDEN: 403,
  PDS_ERR_PAYLOAD_TOO_LARGE: 413,
  PDS_ERR_MODEL_NOT_FOUND: 404,
  PDS_ERR_CONTEXT_LENGTH: 400,
  PDS_ERR_NOT_FOUND: 404,
  PDS_ERR_OVERLOADED: 429,
  PDS_ERR_UNAVAILABLE: 503,
  PDS_ERR_UPSTREAM: 502,
  PDS_ERR_TIMEOUT: 504,
  PDS_ERR_KV_TIMEOUT: 504,
  PDS_ERR_KV_LOAD_FAILED: 503,
  PDS_ERR_CONFIG: 400,
  PDS_ERR_MODEL_LOAD: 500,
  PDS_ERR_INTERNAL: 500,
};

export class PdsError extends Error {
  readonly code: ErrorCode;
  readonly param: string | null;
  constructor(code: ErrorCode, message: string, param: string | null = null) {
    super(message);
    this.code = code;
    this.param = param;
    this.name = 'PdsError';
  }
  get httpStatus(): number {
    return statusOf[this.code];
  }
}

/** The `code` an error body carries where it is not the HTTP status (clients and proxies branch on it). */
const wireCodeOf: Partial<Record<ErrorCode, string>> = {
  PDS_ERR_KV_LOAD_FAILED: 'kv_load_failed',
};

export function wireCode(code: ErrorCode): string | null {
  return wireCodeOf[code] ?? null;
}

/** The HTTP status a code maps to (the one table: PdsError.httpStatus reads it too). */
export function httpStatusOf(code: ErrorCode): number {
  return statusOf[code];
}

/** OpenAI-style error type names by HTTP status. */
export function openAiErrorType(status: number): string {
  if (status === 400) return 'BadRequestError';
  if (status === 401) return 'AuthenticationError';
  if (status === 403) return 'PermissionDeniedError';
  if (status === 404) return 'NotFoundError';
  if (status === 413) return 'BadRequestError';
  if (status === 429) return 'RateLimitError';
  if (status === 503) return 'ServiceUnavailableError';
  if (status >= 500) return 'InternalServerError';
  return 'BadRequestError';
}

/** {"error":{"message","type","param","code"}} */
export function openAiErrorBody(status: number, message: string, param: string | null = null, code: string | number | null = null) {
  return { error: { message, type: openAiErrorType(status), param, code: code ?? status } };
}
