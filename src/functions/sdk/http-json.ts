/** One JSON request to a Containment API with a bearer token; errors carry the API's own message. */
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';

export interface JsonResponse {
  status: number;
  body: unknown;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export async function requestJson(
  url: string,
  init: { method: 'GET' | 'POST'; token: string; body?: unknown; timeoutMs?: number },
): Promise<JsonResponse> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: init.method,
      headers: {
        authorization: `Bearer ${init.token}`,
        accept: 'application/json',
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(init.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    });
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.SERVER_UNREACHABLE,
      `${init.method} ${new URL(url).origin}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new ContainmentError(
      ErrorCodes.SERVER_UNREACHABLE,
      `${init.method} ${new URL(url).pathname}: HTTP ${response.status} without a JSON body`,
    );
  }
  return { status: response.status, body };
}

/** The `{ error: { code, message } }` of a failed call as a ContainmentError with `code`. */
export function apiError(code: ErrorCode, what: string, response: JsonResponse): ContainmentError {
  const error = (response.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const detail =
    typeof error?.message === 'string'
      ? `${typeof error.code === 'string' ? `${error.code}: ` : ''}${error.message}`
      : `HTTP ${response.status}`;
  return new ContainmentError(code, `${what}: ${detail}`);
}

/** The shared error code for an HTTP status of a Containment API. */
export function codeForStatus(status: number, otherwise: ErrorCode): ErrorCode {
  if (status === 401) return ErrorCodes.UNAUTHENTICATED;
  if (status === 403) return ErrorCodes.FORBIDDEN;
  return otherwise;
}
