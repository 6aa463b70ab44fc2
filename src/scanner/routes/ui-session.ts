/**
 * Dashboard sign-in with an API token: `POST /ui/session` checks the token once and answers with
 * an `HttpOnly; SameSite=Strict` cookie (`Secure` when the request came over TLS) holding it, so
 * the page's script never sees or stores the token. From then on the cookie stands in for the
 * `Authorization` header on every route (the same bearer authentication, the same principal).
 *
 * CSRF: besides SameSite=Strict, a request authenticated by the cookie that is not GET/HEAD must
 * carry the header `X-Containment-CSRF: 1` (a cross-site form cannot set a header, and a cross-site
 * fetch with one needs a CORS preflight this server never grants) and, when it names an `Origin`,
 * come from this server's own origin. Sign-in itself needs the header too (no login CSRF).
 * A request that carries an `Authorization` header ignores the cookie.
 * Sign-in attempts are limited per client address (`signInLimit`): 429 `RATE_LIMITED`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { authenticate } from '../../auth/authenticate.js';
import type { AuthenticateOptions } from '../../auth/authenticate.js';
import type { Principal } from '../../auth/principal.js';
import { ApiErrorCodes, ScannerApiError } from '../api-error.js';
import { uiSecurityHeaders } from './web-assets.js';

export const SESSION_COOKIE = 'ctm_session';
export const CSRF_HEADER = 'x-containment-csrf';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const signInSchema = z.object({ token: z.string().min(1).max(8192) });

/** The value of one cookie in a `Cookie` header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** Sets the session cookie (an OIDC sign-in gives it the token's remaining lifetime). */
export function setSessionCookie(
  reply: FastifyReply,
  request: FastifyRequest,
  token: string,
  maxAge?: number,
): void {
  void reply.header('set-cookie', sessionCookie(request, token, maxAge));
}

function sessionCookie(request: FastifyRequest, value: string, maxAge?: number): string {
  const parts = [`${SESSION_COOKIE}=${encodeURIComponent(value)}`, 'Path=/', 'HttpOnly', 'SameSite=Strict'];
  if (request.protocol === 'https') parts.push('Secure');
  if (maxAge !== undefined) parts.push(`Max-Age=${maxAge}`);
  return parts.join('; ');
}

/** What the dashboard needs to know about the signed-in principal (never the token). */
function describe(principal: Principal): object {
  return { subject: principal.subject, role: principal.role, scope: principal.scope, via: principal.via };
}

function csrfCheck(request: FastifyRequest): void {
  if (SAFE_METHODS.has(request.method)) return;
  if (request.headers[CSRF_HEADER] !== '1')
    throw new ScannerApiError(
      403,
      ApiErrorCodes.CSRF_REJECTED,
      `a cookie-authenticated ${request.method} needs the ${CSRF_HEADER} header`,
    );
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== `${request.protocol}://${request.host}`)
    throw new ScannerApiError(403, ApiErrorCodes.CSRF_REJECTED, `origin ${origin} is not this server`);
}

/**
 * Adds the cookie→Authorization hook (register before the `/v1` routes so they inherit it) and
 * `GET|POST|DELETE /ui/session`.
 */
export function registerUiSession(
  app: FastifyInstance,
  auth: AuthenticateOptions,
  signInLimit?: (request: FastifyRequest, reply: FastifyReply) => Promise<void>,
): void {
  app.addHook('onRequest', async (request) => {
    if (request.headers.authorization !== undefined) return;
    if (request.url.startsWith('/ui/session')) return;
    const token = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (token === undefined || token === '') return;
    csrfCheck(request);
    request.headers.authorization = `Bearer ${token}`;
  });

  const fromCookie = async (request: FastifyRequest): Promise<Principal> =>
    authenticate(
      request.headers.authorization ??
        (cookieValue(request.headers.cookie, SESSION_COOKIE) === undefined
          ? undefined
          : `Bearer ${cookieValue(request.headers.cookie, SESSION_COOKIE)}`),
      auth,
    );

  const noStore = (reply: FastifyReply): FastifyReply =>
    uiSecurityHeaders(reply).header('cache-control', 'no-store');

  app.get('/ui/session', async (request, reply) => {
    noStore(reply);
    return describe(await fromCookie(request));
  });

  app.post('/ui/session', async (request, reply) => {
    noStore(reply);
    await signInLimit?.(request, reply);
    csrfCheck(request);
    const parsed = signInSchema.safeParse(request.body);
    if (!parsed.success)
      throw new ScannerApiError(400, ApiErrorCodes.REQUEST_INVALID, 'body must be {"token": "<API token>"}');
    const principal = await authenticate(`Bearer ${parsed.data.token}`, auth);
    return reply.header('set-cookie', sessionCookie(request, parsed.data.token)).send(describe(principal));
  });

  app.delete('/ui/session', async (request, reply) => {
    noStore(reply);
    csrfCheck(request);
    return reply
      .header('set-cookie', sessionCookie(request, '', 0))
      .status(204)
      .send();
  });
}
