/**
 * Turns an `Authorization` header into a Principal: `ctm_…` bearer tokens go to the API token
 * service, anything else to the OIDC verifier when one is configured. Every failure is a
 * ContainmentError(UNAUTHENTICATED) whose message never repeats the token.
 */
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { ApiTokens } from './api-tokens.js';
import { isApiToken } from './api-tokens.js';
import type { OidcVerifier } from './oidc.js';
import type { Principal } from './principal.js';

export interface AuthenticateOptions {
  tokens: Pick<ApiTokens, 'verify'>;
  oidc?: OidcVerifier;
}

// RFC 6750 §2.1: `Bearer` (any case), one or more spaces, then a b64token.
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export async function authenticate(
  authorizationHeader: string | undefined,
  options: AuthenticateOptions,
): Promise<Principal> {
  if (authorizationHeader === undefined || authorizationHeader.trim() === '') {
    throw new ContainmentError(ErrorCodes.UNAUTHENTICATED, 'missing bearer token');
  }
  const token = BEARER.exec(authorizationHeader)?.[1];
  if (token === undefined) {
    throw new ContainmentError(ErrorCodes.UNAUTHENTICATED, 'authorization header is not a bearer token');
  }
  if (isApiToken(token)) return options.tokens.verify(token);
  if (!options.oidc) throw new ContainmentError(ErrorCodes.UNAUTHENTICATED, 'unrecognised bearer token');
  return options.oidc.verify(token);
}
