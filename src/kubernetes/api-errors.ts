/** Reading @kubernetes/client-node failures: HTTP status codes, and which failures are worth a retry. */

/** The HTTP status of an API error (ApiException `code`, Watch `statusCode`), if any. */
export function apiStatus(e: unknown): number | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const { code, statusCode } = e as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'number') return code;
  if (typeof statusCode === 'number') return statusCode;
  return undefined;
}

export const isNotFound = (e: unknown): boolean => apiStatus(e) === 404;
export const isConflict = (e: unknown): boolean => apiStatus(e) === 409;

/** Network failures, throttling and server errors: the same call may succeed later. */
export function isTransient(e: unknown): boolean {
  const status = apiStatus(e);
  if (status === undefined) return true; // connection refused/reset, timeouts
  return status === 429 || status >= 500;
}

/** The API server's own one-line message (`Status.message`), else the error's. */
export function apiMessage(e: unknown): string {
  const body = (e as { body?: unknown }).body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = undefined;
    }
  }
  const message = (parsed as { message?: unknown } | undefined)?.message;
  if (typeof message === 'string') return message;
  const status = apiStatus(e);
  const text = e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e);
  return status === undefined ? text : `HTTP ${status}: ${text}`;
}
