/**
 * The one HTTP path of every client of our own APIs (scanner, function runtime / OpenWhisk, action
 * API): fetch with an Authorization header, a timeout, JSON in and out, and one error for an error
 * answer — ApiError, with the HTTP status, a stable code and the server's message. A server that
 * cannot be reached, or answers something that is not JSON, is SERVER_UNREACHABLE.
 *
 * Node globals only (fetch, AbortSignal, Buffer): the policy bundles for OpenWhisk and Knative
 * include this file and must stay plain scripts.
 */
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { ErrorCode } from '../errors.js';

/** An error answer of one of our APIs (or of OpenWhisk): HTTP status, stable code, message. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    /** The server's own code (e.g. `CLUSTER_EXISTS`), or the shared ErrorCode the client chose. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface JsonResponse {
  status: number;
  /** The parsed JSON; undefined for an empty body. */
  body: unknown;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface HttpClientOptions {
  /** Base URL; paths are appended to it as they are (its own path is kept). */
  base: string;
  /** The whole Authorization header value (`Bearer …`, `Basic …`). */
  authorization: string;
  /** Per request; a single request may ask for more. */
  timeoutMs: number;
  /** A body that is not JSON: an error (default) or kept as text (OpenWhisk errors may be text). */
  textBodies?: boolean;
  /** Injected for tests (e.g. to count requests); default the global fetch. */
  fetch?: typeof fetch;
}

export const bearer = (token: string): string => `Bearer ${token}`;
export const basic = (auth: string): string => `Basic ${Buffer.from(auth).toString('base64')}`;

/** `base` checked as an http(s) URL, without trailing slashes; USAGE names `what` otherwise. */
export function httpBase(base: string, what: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new ContainmentError(ErrorCodes.USAGE, `${what}: "${base}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ContainmentError(ErrorCodes.USAGE, `${what}: expected an http(s) URL, got ${url.protocol}`);
  return url.href.replace(/\/+$/, '');
}

export class HttpClient {
  readonly base: string;

  constructor(private readonly options: HttpClientOptions) {
    this.base = options.base.replace(/\/+$/, '');
  }

  /** One request; any HTTP status resolves (the caller decides what is an error). */
  async send(
    method: HttpMethod,
    path: string,
    init: { body?: unknown; timeoutMs?: number; accept?: boolean } = {},
  ): Promise<JsonResponse> {
    let res: Response;
    try {
      res = await (this.options.fetch ?? fetch)(`${this.base}${path}`, {
        method,
        headers: {
          authorization: this.options.authorization,
          ...(init.accept === false ? {} : { accept: 'application/json' }),
          ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
        redirect: 'error',
        signal: AbortSignal.timeout(init.timeoutMs ?? this.options.timeoutMs),
      });
    } catch (e) {
      const why = fetchFailure(e, init.timeoutMs ?? this.options.timeoutMs);
      throw new ContainmentError(ErrorCodes.SERVER_UNREACHABLE, `cannot reach ${this.base}: ${why}`, {
        cause: e,
      });
    }
    const text = await res.text();
    try {
      return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
    } catch {
      if (this.options.textBodies) return { status: res.status, body: text };
      throw new ContainmentError(
        ErrorCodes.SERVER_UNREACHABLE,
        `${method} ${path.split('?')[0]}: HTTP ${res.status} without JSON; is ${this.base} a containment server?`,
      );
    }
  }
}

/** Why a fetch failed, briefly: `no answer in <ms> ms`, the socket's code (ECONNREFUSED) or the message. */
export function fetchFailure(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; cause?: { code?: string }; message?: string };
  return err.name === 'TimeoutError'
    ? `no answer in ${timeoutMs} ms`
    : (err.cause?.code ?? String(err.message));
}

/** The `{ error: { code, message } }` (our APIs) or `{ error: "…" }` (OpenWhisk) of an answer. */
export function errorOf(response: JsonResponse): { code?: string; message?: string } {
  const error = (response.body as { error?: unknown } | undefined)?.error;
  if (typeof error === 'string') return { message: error.split('\n').join(' ') };
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return {
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof message === 'string' ? { message } : {}),
  };
}

/** The server's own code and first message line (`HTTP_<status>` / `HTTP <status>` without them). */
export function apiErrorOf(response: JsonResponse): ApiError {
  const { code, message } = errorOf(response);
  return new ApiError(
    response.status,
    code ?? `HTTP_${response.status}`,
    (message ?? `HTTP ${response.status}`).split('\n')[0] ?? '',
  );
}

/**
 * An error answer under a shared ErrorCode (401 → UNAUTHENTICATED, 403 → FORBIDDEN, else
 * `otherwise`), its message `<what>: [<server code>: ]<server message>` — how the policy SDK and
 * the deployment report a refused call.
 */
export function describedApiError(what: string, response: JsonResponse, otherwise: ErrorCode): ApiError {
  const { code, message } = errorOf(response);
  const detail =
    message === undefined ? `HTTP ${response.status}` : `${code === undefined ? '' : `${code}: `}${message}`;
  return new ApiError(response.status, codeForStatus(response.status, otherwise), `${what}: ${detail}`);
}

/** The shared error code for an HTTP status of one of our APIs. */
export function codeForStatus(status: number, otherwise: ErrorCode): ErrorCode {
  if (status === 401) return ErrorCodes.UNAUTHENTICATED;
  if (status === 403) return ErrorCodes.FORBIDDEN;
  return otherwise;
}
