/**
 * Dashboard sign-in through the OIDC issuer the server already trusts: authorization code with
 * PKCE (S256), state and nonce, run by the server (oauth4webapi), so no token ever reaches the
 * page's script. The verifier, state, nonce and the page to return to travel in a short-lived
 * HttpOnly cookie scoped to `/ui/oidc` (SameSite=Lax: it must come back on the issuer's top-level
 * redirect). The token obtained must pass the server's own OIDC verifier (issuer, audience,
 * signature, role and namespace claims) before it becomes the session cookie — the same
 * authentication as a bearer JWT, so the session can never see more than that token could.
 *
 * - `GET /ui/oidc` — `{ enabled }`, for the sign-in page;
 * - `GET /ui/oidc/login?next=/ui/…` — redirects to the issuer;
 * - `GET /ui/oidc/callback` — the redirect URI: sets the session cookie, redirects to `next`.
 */
import { Buffer } from 'node:buffer';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as oauth from 'oauth4webapi';
import { z } from 'zod';
import type { OidcVerifier } from '../../auth/oidc.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { notFound } from '../api-error.js';
import { cookieValue, setSessionCookie } from './ui-session.js';
import { uiSecurityHeaders } from './web-assets.js';

export interface WebOidcClient {
  /** The issuer the server's verifier trusts (`--oidc-issuer`). */
  issuer: string;
  clientId: string;
  /** Confidential client (client_secret_post); a public client (PKCE only) when absent. */
  clientSecret?: string;
  /** Default: `<this server's origin>/ui/oidc/callback`, from the request. */
  redirectUri?: string;
}

const FLOW_COOKIE = 'ctm_oidc';
const FLOW_TTL_S = 600;
const flowSchema = z.object({ v: z.string(), s: z.string(), n: z.string(), next: z.string() });

/** Only this app's pages: `next` must not send the user anywhere else. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/ui/') && !next.startsWith('//') ? next : '/ui/';
}

/** Plain HTTP only to a loopback issuer (tests, a local IdP); anything else must be HTTPS. */
function insecureAllowed(issuer: URL): boolean {
  return issuer.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(issuer.hostname);
}

function oidcFailure(message: string, cause?: unknown): ContainmentError {
  return new ContainmentError(ErrorCodes.UNAUTHENTICATED, `OIDC sign-in failed: ${message}`, { cause });
}

// Over 120 lines: the status, login and callback routes share the one OIDC client set up here.
export function registerUiOidc(
  app: FastifyInstance,
  config: WebOidcClient | undefined,
  verifier: OidcVerifier | undefined,
): void {
  const enabled = config !== undefined && verifier !== undefined;
  app.get('/ui/oidc', async (_request, reply) => {
    uiSecurityHeaders(reply).header('cache-control', 'no-store');
    return { enabled };
  });
  if (!enabled) {
    // The same routes either way (one route table, one OpenAPI document); here they only say so.
    const off = async (): Promise<never> => {
      throw notFound('OIDC sign-in on this server');
    };
    app.get('/ui/oidc/login', off);
    app.get('/ui/oidc/callback', off);
    return;
  }

  const issuer = new URL(config.issuer);
  const http = insecureAllowed(issuer) ? { [oauth.allowInsecureRequests]: true } : {};
  const client: oauth.Client = { client_id: config.clientId };
  const clientAuth =
    config.clientSecret === undefined ? oauth.None() : oauth.ClientSecretPost(config.clientSecret);
  let discovered: Promise<oauth.AuthorizationServer> | undefined;
  const server = (): Promise<oauth.AuthorizationServer> => {
    discovered ??= oauth
      .discoveryRequest(issuer, { algorithm: 'oidc', ...http })
      .then((response) => oauth.processDiscoveryResponse(issuer, response))
      .catch((e: unknown) => {
        discovered = undefined; // try again on the next sign-in
        throw oidcFailure(`discovery of ${issuer.href} failed`, e);
      });
    return discovered;
  };
  const redirectUri = (request: FastifyRequest): string =>
    config.redirectUri ?? `${request.protocol}://${request.host}/ui/oidc/callback`;
  const flowCookie = (request: FastifyRequest, value: string, maxAge: number): string =>
    [
      `${FLOW_COOKIE}=${value}`,
      'Path=/ui/oidc',
      'HttpOnly',
      'SameSite=Lax',
      ...(request.protocol === 'https' ? ['Secure'] : []),
      `Max-Age=${maxAge}`,
    ].join('; ');

  app.get('/ui/oidc/login', async (request, reply) => {
    uiSecurityHeaders(reply).header('cache-control', 'no-store');
    const as = await server();
    if (as.authorization_endpoint === undefined)
      throw oidcFailure('the issuer has no authorization endpoint');
    const flow = {
      v: oauth.generateRandomCodeVerifier(),
      s: oauth.generateRandomState(),
      n: oauth.generateRandomNonce(),
      next: safeNext((request.query as { next?: unknown }).next),
    };
    const target = new URL(as.authorization_endpoint);
    target.search = new URLSearchParams({
      client_id: config.clientId,
      redirect_uri: redirectUri(request),
      response_type: 'code',
      scope: 'openid',
      code_challenge: await oauth.calculatePKCECodeChallenge(flow.v),
      code_challenge_method: 'S256',
      state: flow.s,
      nonce: flow.n,
    }).toString();
    const value = Buffer.from(JSON.stringify(flow)).toString('base64url');
    return reply.header('set-cookie', flowCookie(request, value, FLOW_TTL_S)).redirect(target.href, 302);
  });

  // A failed sign-in goes back to the sign-in page, which shows the code (never a bare JSON page).
  app.get('/ui/oidc/callback', async (request, reply) => {
    uiSecurityHeaders(reply).header('cache-control', 'no-store');
    void reply.header('set-cookie', flowCookie(request, '', 0));
    try {
      return await callback(request, reply);
    } catch (e) {
      request.log.info({ err: e }, 'OIDC sign-in failed');
      const code = e instanceof ContainmentError ? e.code : ErrorCodes.UNAUTHENTICATED;
      return reply.redirect(`/ui/signin?error=${encodeURIComponent(code)}`, 303);
    }
  });

  const callback = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const raw = cookieValue(request.headers.cookie, FLOW_COOKIE);
    let flow: z.infer<typeof flowSchema>;
    try {
      flow = flowSchema.parse(JSON.parse(Buffer.from(raw ?? '', 'base64url').toString('utf8')));
    } catch {
      throw oidcFailure('no sign-in in progress (start again)');
    }
    const as = await server();
    const here = new URL(request.url, `${request.protocol}://${request.host}`);
    let tokens: oauth.TokenEndpointResponse;
    try {
      const params = oauth.validateAuthResponse(as, client, here.searchParams, flow.s);
      const response = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        clientAuth,
        params,
        redirectUri(request),
        flow.v,
        http,
      );
      tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
        expectedNonce: flow.n,
        requireIdToken: true,
      });
    } catch (e) {
      throw oidcFailure(e instanceof Error ? e.message : 'the issuer refused the code', e);
    }
    // The access token when it is a JWT for this server, else the ID token: whichever the
    // server's verifier accepts (its audience decides).
    const candidates = [tokens.access_token, tokens.id_token].filter((t): t is string => t !== undefined);
    let last: unknown;
    for (const token of candidates) {
      try {
        await verifier.verify(token);
        const exp = (
          JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { exp?: number }
        ).exp;
        const maxAge = exp === undefined ? undefined : Math.max(0, exp - Math.floor(Date.now() / 1000));
        setSessionCookie(reply, request, token, maxAge);
        return reply.redirect(flow.next, 303);
      } catch (e) {
        last = e;
      }
    }
    throw last instanceof ContainmentError ? last : oidcFailure('no token the server accepts');
  };
}
