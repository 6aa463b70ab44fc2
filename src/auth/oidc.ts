/**
 * OIDC bearer tokens (JWT ID or access tokens): signature checked against the issuer's JWKS,
 * then issuer, audience, expiry and algorithm, then claims mapped to a Principal.
 *
 * Only asymmetric algorithms are accepted, so neither `alg: none` nor an HMAC token keyed with the
 * issuer's public key can pass (jose also refuses to use an asymmetric JWK as an HMAC secret).
 */
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { Principal, Role, Scope } from './principal.js';
import { isRole, roleActions, scopeProblem } from './principal.js';

export const DEFAULT_OIDC_ALGORITHMS = ['RS256', 'ES256', 'PS256', 'EdDSA'] as const;
const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$|^ES256K$|^EdDSA$|^Ed25519$/;

export interface ClaimMapping {
  /** Claim holding a role or a list of roles/groups (unrecognised entries are ignored). */
  rolesClaim: string;
  /** Claim holding the namespaces (a list, one name, or `*`); missing means no namespace. */
  namespacesClaim: string;
  /** Claim holding the cluster; when not configured the principal spans every cluster. */
  clusterClaim?: string;
}

export interface OidcVerifierOptions extends ClaimMapping, JwtVerifierOptions {}

export interface OidcVerifier {
  /** Resolves to the caller, or throws UNAUTHENTICATED. */
  verify(jwt: string): Promise<Principal>;
}

function unauthenticated(message: string, cause?: unknown): ContainmentError {
  return new ContainmentError(ErrorCodes.UNAUTHENTICATED, message, { cause });
}

/** A claim by its exact name (names may be URLs with dots), else by a dotted path (`realm_access.roles`). */
function claim(payload: JWTPayload, name: string): unknown {
  if (name in payload) return payload[name];
  let value: unknown = payload;
  for (const part of name.split('.')) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function stringList(value: unknown, what: string): string[] {
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  throw unauthenticated(`OIDC token claim for ${what} is not a string or a list of strings`);
}

/** Among several roles, the one holding every action of the others; none when they are incomparable. */
function dominantRole(roles: Role[]): Role | undefined {
  return roles.find((r) =>
    roles.every((other) => [...roleActions(other)].every((a) => roleActions(r).has(a))),
  );
}

/** Maps verified claims to a Principal (pure; exported for tests and for other token sources). */
export function principalFromClaims(payload: JWTPayload, mapping: ClaimMapping): Principal {
  if (typeof payload.sub !== 'string' || payload.sub === '')
    throw unauthenticated('OIDC token has no subject');
  const roles = [...new Set(stringList(claim(payload, mapping.rolesClaim), 'roles').filter(isRole))];
  if (roles.length === 0) throw unauthenticated('OIDC token carries no recognised role');
  const role = dominantRole(roles);
  if (!role) throw unauthenticated('OIDC token carries conflicting roles');

  const namespaces = stringList(claim(payload, mapping.namespacesClaim), 'namespaces');
  let cluster = '*';
  if (mapping.clusterClaim !== undefined) {
    const value = claim(payload, mapping.clusterClaim);
    if (typeof value !== 'string' || value === '') throw unauthenticated('OIDC token has no cluster claim');
    cluster = value;
  }
  const scope: Scope = { cluster, namespaces: namespaces.includes('*') ? '*' : namespaces };
  const problem = scopeProblem(role, scope);
  if (problem) throw unauthenticated(`OIDC token rejected: ${problem}`);
  return { subject: payload.sub, role, scope, via: 'oidc' };
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'OIDC token expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `OIDC token claim "${err.claim}" check failed`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'OIDC token signature invalid';
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return 'OIDC token algorithm not allowed';
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return 'OIDC token signed by an unknown key';
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'malformed OIDC token';
  return 'OIDC issuer keys unavailable';
}

async function discoverJwksUri(issuer: string, timeoutMs: number): Promise<string> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  if (!res.ok) throw new Error(`discovery returned HTTP ${res.status}`);
  const meta = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
  // OIDC Discovery §4.3: the document must name the very issuer it was fetched for.
  if (meta.issuer !== issuer) throw new Error('discovery document names another issuer');
  if (typeof meta.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
  return meta.jwks_uri;
}

/** Which tokens a JWT verifier accepts: issuer, audience, keys and algorithms. */
export interface JwtVerifierOptions {
  issuer: string;
  audience: string | string[];
  /** Skips discovery when given. */
  jwksUri?: string;
  /** Asymmetric signature algorithms only; default DEFAULT_OIDC_ALGORITHMS. */
  algorithms?: string[];
  /** Seconds (or a jose duration such as '30s') of allowed clock skew. */
  clockTolerance?: number | string;
  /** Timeout for discovery and JWKS requests, ms. */
  timeoutMs?: number;
}

export interface JwtVerifier {
  /** Resolves to the verified claims, or throws UNAUTHENTICATED. */
  verify(jwt: string): Promise<JWTPayload>;
}

/**
 * A JWT's signature checked against the issuer's JWKS, then issuer, audience, expiry and algorithm
 * (CONFIG_INVALID at construction for a symmetric or empty algorithm list). The one verifier behind
 * OIDC bearer tokens and web actions' JWTs.
 */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const algorithms = options.algorithms ?? [...DEFAULT_OIDC_ALGORITHMS];
  const symmetric = algorithms.filter((a) => !ASYMMETRIC.test(a));
  if (algorithms.length === 0 || symmetric.length > 0) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `OIDC algorithms must be asymmetric signature algorithms (refused: ${symmetric.join(', ') || 'empty list'})`,
    );
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  const keySet = (uri: string): JWTVerifyGetKey =>
    createRemoteJWKSet(new URL(uri), { timeoutDuration: timeoutMs });

  // Discovery runs once, lazily; a failure is forgotten so the next request retries it.
  let keys: Promise<JWTVerifyGetKey> | undefined = options.jwksUri
    ? Promise.resolve(keySet(options.jwksUri))
    : undefined;
  const getKeys = (): Promise<JWTVerifyGetKey> => {
    keys ??= discoverJwksUri(options.issuer, timeoutMs).then(keySet, (err: unknown) => {
      keys = undefined;
      throw unauthenticated('OIDC issuer discovery failed', err);
    });
    return keys;
  };

  return {
    async verify(jwt) {
      const getKey = await getKeys();
      try {
        const { payload } = await jwtVerify(jwt, getKey, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms,
          requiredClaims: ['exp', 'sub'],
          ...(options.clockTolerance === undefined ? {} : { clockTolerance: options.clockTolerance }),
        });
        return payload;
      } catch (err) {
        throw unauthenticated(describe(err), err);
      }
    },
  };
}

export function createOidcVerifier(options: OidcVerifierOptions): OidcVerifier {
  const jwt = createJwtVerifier(options);
  return {
    async verify(token) {
      return principalFromClaims(await jwt.verify(token), options);
    },
  };
}
