/**
 * JWTs on web actions. An action annotated `containment.dev/auth: jwt` answers only a request with
 * `Authorization: Bearer <JWT>` that the namespace's issuer signed: the namespace's `web-auth`
 * setting names the issuer, the audience and the JWKS URL, and the token is verified by the same
 * verifier as the APIs' OIDC tokens (auth/oidc.ts: jose, JWKS, asymmetric algorithms only, so
 * `alg: none` and an HMAC keyed with the public key are refused). The caller's roles are the union
 * of the `roles` and `permissions` claims (a string or a list) and the space-separated `scope`
 * claim; the action's `containment.dev/required-roles` (a list, or a comma-separated string) must
 * all be among them. 401 UNAUTHENTICATED / 403 FORBIDDEN otherwise.
 */
import type { JWTPayload } from 'jose';
import { z } from 'zod';
import { createJwtVerifier, DEFAULT_OIDC_ALGORITHMS } from '../auth/oidc.js';
import type { JwtVerifier } from '../auth/oidc.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { TargetGuard } from '../events/ssrf.js';
import type { JsonValue } from './sandbox/sandbox.js';

export const WEB_AUTH_ANNOTATION = 'containment.dev/auth';
export const REQUIRED_ROLES_ANNOTATION = 'containment.dev/required-roles';
/** The namespace setting (store key) holding the issuer of its web actions' JWTs. */
export const WEB_AUTH_SETTING = 'web-auth';

export const webAuthSettingsSchema = z.strictObject({
  issuer: z.string().min(1).max(2048),
  audience: z.union([z.string().min(1).max(2048), z.array(z.string().min(1).max(2048)).min(1).max(16)]),
  jwksUrl: z.url({ protocol: /^https?$/ }).max(2048),
  /** Default RS256, ES256, PS256, EdDSA; HS* and `none` are refused. */
  algorithms: z.array(z.string().min(1).max(16)).min(1).max(16).optional(),
});
export type WebAuthSettings = z.output<typeof webAuthSettingsSchema>;

/**
 * The JWKS URL may be on a private network (an in-cluster issuer) but never a link-local, metadata,
 * multicast or reserved address: the runtime fetches it.
 */
const JWKS_GUARD = new TargetGuard({ allow: ['0.0.0.0/0', '::/0'] });

/** Validates settings (CONFIG_INVALID with the first problem): schema, algorithms, JWKS address. */
export function parseWebAuthSettings(value: unknown): WebAuthSettings {
  const parsed = webAuthSettingsSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
    throw new ContainmentError(ErrorCodes.CONFIG_INVALID, `web-auth: ${where}${issue?.message ?? 'invalid'}`);
  }
  try {
    JWKS_GUARD.checkUrl(parsed.data.jwksUrl);
  } catch (e) {
    throw new ContainmentError(ErrorCodes.CONFIG_INVALID, `web-auth: jwksUrl: ${(e as Error).message}`);
  }
  verifierFor(parsed.data); // refuses symmetric algorithms now, not at the first request
  return parsed.data;
}

function verifierFor(settings: WebAuthSettings): JwtVerifier {
  return createJwtVerifier({
    issuer: settings.issuer,
    audience: settings.audience,
    jwksUri: settings.jwksUrl,
    algorithms: settings.algorithms ?? [...DEFAULT_OIDC_ALGORITHMS],
  });
}

/** The roles an action declares: a list of strings, or one comma-separated string. */
export function requiredRoles(annotation: JsonValue | undefined): string[] {
  const list =
    typeof annotation === 'string'
      ? annotation.split(',')
      : Array.isArray(annotation)
        ? annotation.filter((r): r is string => typeof r === 'string')
        : [];
  return list.map((r) => r.trim()).filter((r) => r !== '');
}

/** What the caller holds: `roles` and `permissions` (string or list) and `scope` (space-separated). */
export function grantedRoles(claims: JWTPayload): Set<string> {
  const out = new Set<string>();
  for (const name of ['roles', 'permissions']) {
    const value = claims[name];
    for (const r of typeof value === 'string' ? [value] : Array.isArray(value) ? value : [])
      if (typeof r === 'string' && r !== '') out.add(r);
  }
  if (typeof claims.scope === 'string') for (const s of claims.scope.split(' ')) if (s !== '') out.add(s);
  return out;
}

export type WebAuthOutcome =
  | { ok: true; claims: JWTPayload }
  | { ok: false; status: 401 | 403; code: 'UNAUTHENTICATED' | 'FORBIDDEN'; reason: string };

/** Verifies web-action callers; one verifier (and JWKS cache) per namespace and settings. */
export class WebAuthenticator {
  private readonly verifiers = new Map<string, { key: string; verifier: JwtVerifier }>();

  constructor(private readonly settingsOf: (namespace: string) => WebAuthSettings | undefined) {}

  async authenticate(
    namespace: string,
    authorization: string | undefined,
    required: readonly string[],
  ): Promise<WebAuthOutcome> {
    const deny = (reason: string): WebAuthOutcome => ({
      ok: false,
      status: 401,
      code: ErrorCodes.UNAUTHENTICATED,
      reason,
    });
    const settings = this.settingsOf(namespace);
    if (settings === undefined) return deny(`namespace ${namespace} has no web-auth (JWT issuer) configured`);
    const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(authorization ?? '');
    if (!match) return deny('no Bearer token');
    let claims: JWTPayload;
    try {
      claims = await this.verifier(namespace, settings).verify(match[1] as string);
    } catch (e) {
      if (e instanceof ContainmentError && e.code === ErrorCodes.UNAUTHENTICATED) return deny(e.message);
      throw e;
    }
    const granted = grantedRoles(claims);
    const missing = required.filter((r) => !granted.has(r));
    if (missing.length > 0)
      return {
        ok: false,
        status: 403,
        code: ErrorCodes.FORBIDDEN,
        reason: `token of ${String(claims.sub)} lacks ${missing.join(', ')}`,
      };
    return { ok: true, claims };
  }

  private verifier(namespace: string, settings: WebAuthSettings): JwtVerifier {
    const key = JSON.stringify(settings);
    const known = this.verifiers.get(namespace);
    if (known?.key === key) return known.verifier;
    const verifier = verifierFor(settings);
    this.verifiers.set(namespace, { key, verifier });
    return verifier;
  }
}
