/**
 * HTTP errors of the scanner API: a status and a stable machine-readable code, answered as
 * `{ error: { code, message } }`. Codes here are the API's own (the shared ErrorCodes are for
 * library and CLI failures; those map onto statuses in `httpStatusOf`).
 */
import type { ContainmentError } from '../errors.js';
import { ConflictError, ErrorCodes, NotFoundError } from '../errors.js';

export const ApiErrorCodes = {
  /** The body, query or path failed validation. */
  REQUEST_INVALID: 'REQUEST_INVALID',
  /** The body is not JSON (or is empty). */
  INVALID_JSON: 'INVALID_JSON',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  NOT_FOUND: 'NOT_FOUND',
  CLUSTER_NOT_FOUND: 'CLUSTER_NOT_FOUND',
  CLUSTER_EXISTS: 'CLUSTER_EXISTS',
  /** A report id already recorded for another workload. */
  REPORT_ID_CONFLICT: 'REPORT_ID_CONFLICT',
  /** A report without inventory whose hash is not the workload's last one: resend it in full. */
  INVENTORY_REQUIRED: 'INVENTORY_REQUIRED',
  NOT_READY: 'NOT_READY',
  /** Too many requests from one token (or one address when unauthenticated); see Retry-After. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A state-changing call authenticated by the dashboard's session cookie lacks the CSRF header. */
  CSRF_REJECTED: 'CSRF_REJECTED',
  /** `/ui/` was requested but the dashboard's assets were not built (`npm run build`). */
  UI_NOT_BUILT: 'UI_NOT_BUILT',
  /** The audit or policies routes on a scanner with no linked enforcer and runtime (`containment up` links them). */
  PARTS_NOT_LINKED: 'PARTS_NOT_LINKED',
  /** The linked enforcer or policy runtime failed or did not answer. */
  LINKED_PART_FAILED: 'LINKED_PART_FAILED',
  INTERNAL: 'INTERNAL',
} as const;

export type ApiErrorCode = (typeof ApiErrorCodes)[keyof typeof ApiErrorCodes];

export class ScannerApiError extends Error {
  override readonly name = 'ScannerApiError';
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function notFound(what: string): ScannerApiError {
  return new ScannerApiError(404, ApiErrorCodes.NOT_FOUND, `${what} not found`);
}

/** HTTP status for a ContainmentError raised by the shared libraries or a store. */
export function httpStatusOf(error: ContainmentError): number {
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ConflictError) return 409;
  switch (error.code) {
    case ErrorCodes.UNAUTHENTICATED:
      return 401;
    case ErrorCodes.FORBIDDEN:
      return 403;
    case ErrorCodes.DB_UNREADABLE:
    case ErrorCodes.ENGINE_UNAVAILABLE:
      return 503;
    default:
      // USAGE, TARGET_URL_REFUSED, CONFIG_INVALID, VERSION_INVALID …: the caller sent something unusable.
      return 400;
  }
}
