/**
 * OIDC verification against a real `oidc-provider` (v8) on loopback issuing JWT access tokens
 * through the client_credentials grant, and forged tokens that must all be refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPublicKey } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import Database from 'better-sqlite3';
import { ContainmentError } from '../errors.js';
import { authenticate } from './authenticate.js';
import type { AuthenticateOptions } from './authenticate.js';
import { createApiTokens } from './api-tokens.js';
import { createOidcVerifier, principalFromClaims } from './oidc.js';
import type { OidcVerifier } from './oidc.js';
import { can, namespaceFilter } from './principal.js';
import { RSA_KID, startOidcProvider } from './oidc-provider.test-helper.js';
import type { TestOidcProvider } from './oidc-provider.test-helper.js';
import { openSqliteTokenStore } from '../storage/tokens/token-store.js';

const AUDIENCE = 'https://scanner.test';
const ROLES = 'https://containment.dev/roles';
const NAMESPACES = 'https://containment.dev/namespaces';
const CLUSTER = 'https://containment.dev/cluster';

// Claims each provider client gets in its access tokens.
const CLIENT_CLAIMS: Record<string, Record<string, unknown>> = {
  'viewer-payments': { [ROLES]: ['staff', 'viewer'], [NAMESPACES]: ['payments'], [CLUSTER]: 'prod' },
  'analyst-es': { [ROLES]: ['viewer', 'analyst'], [NAMESPACES]: ['a', 'b'], [CLUSTER]: 'eu' },
  'admin-all': { [ROLES]: 'admin', [NAMESPACES]: '*', [CLUSTER]: '*' },
  rogue: { [ROLES]: ['root'], [NAMESPACES]: '*', [CLUSTER]: '*' },
  'no-namespaces': { [ROLES]: ['viewer'], [CLUSTER]: 'prod' },
  'agent-everywhere': { [ROLES]: ['agent'], [NAMESPACES]: '*', [CLUSTER]: '*' },
  'mixed-roles': { [ROLES]: ['agent', 'viewer'], [NAMESPACES]: '*', [CLUSTER]: 'prod' },
};

let provider: TestOidcProvider;
let issuer: string;
let rsaPrivate: CryptoKey;
let verifier: OidcVerifier;

/** A real access token from the provider's token endpoint. */
function issue(clientId: string, resource = AUDIENCE): Promise<string> {
  return provider.issue(clientId, resource);
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Claims a genuine viewer token would carry, for forgeries. */
function viewerClaims(extra: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    ...CLIENT_CLAIMS['viewer-payments'],
    sub: 'viewer-payments',
    iss: issuer,
    aud: AUDIENCE,
    iat: now,
    exp: now + 300,
    ...extra,
  };
}

async function sign(
  payload: JWTPayload,
  key: CryptoKey | Uint8Array,
  header: Record<string, unknown>,
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: RSA_KID, ...header }).sign(key);
}

async function assertRejected(token: string, message: RegExp, oidc: OidcVerifier = verifier): Promise<void> {
  await assert.rejects(authenticate(`Bearer ${token}`, { tokens: unusedTokens, oidc }), (e: unknown) => {
    assert.ok(e instanceof ContainmentError, `not a ContainmentError: ${String(e)}`);
    assert.equal(e.code, 'UNAUTHENTICATED');
    assert.match(e.message, message);
    assert.doesNotMatch(e.message, /\n/);
    for (const part of token.split('.'))
      if (part.length > 8) assert.ok(!e.message.includes(part), 'message echoes token');
    return true;
  });
}

const unusedTokens: AuthenticateOptions['tokens'] = {
  verify: () => Promise.reject(new Error('API token path must not be taken for a JWT')),
};

before(async () => {
  provider = await startOidcProvider({ clients: CLIENT_CLAIMS, es256Clients: ['analyst-es'] });
  ({ issuer, rsaPrivate } = provider);
  verifier = createOidcVerifier({
    issuer,
    audience: AUDIENCE,
    rolesClaim: ROLES,
    namespacesClaim: NAMESPACES,
    clusterClaim: CLUSTER,
  });
});

after(() => provider.close());

describe('OIDC tokens from a real provider', () => {
  it('maps a viewer token (found through discovery) to a namespace-scoped principal', async () => {
    const principal = await authenticate(`Bearer ${await issue('viewer-payments')}`, {
      tokens: unusedTokens,
      oidc: verifier,
    });
    assert.deepEqual(principal, {
      subject: 'viewer-payments',
      role: 'viewer',
      scope: { cluster: 'prod', namespaces: ['payments'] },
      via: 'oidc',
    });
    assert.equal(can(principal, 'findings:read', { cluster: 'prod', namespace: 'payments' }), true);
    assert.equal(can(principal, 'findings:read', { cluster: 'prod', namespace: 'billing' }), false);
    assert.equal(can(principal, 'findings:read', { cluster: 'staging', namespace: 'payments' }), false);
    assert.equal(can(principal, 'triggers:write', { cluster: 'prod', namespace: 'payments' }), false);
  });

  it('verifies an ES256 token and picks the role that covers the others', async () => {
    const token = await issue('analyst-es');
    assert.equal(JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()).alg, 'ES256');
    const principal = await verifier.verify(token);
    assert.equal(principal.role, 'analyst');
    assert.deepEqual(principal.scope, { cluster: 'eu', namespaces: ['a', 'b'] });
  });

  it('maps `*` claims to a global admin', async () => {
    const principal = await verifier.verify(await issue('admin-all'));
    assert.deepEqual(principal.scope, { cluster: '*', namespaces: '*' });
    assert.equal(can(principal, 'tokens:write'), true);
  });

  it('gives no namespace when the namespaces claim is missing', async () => {
    const principal = await verifier.verify(await issue('no-namespaces'));
    assert.deepEqual(principal.scope.namespaces, []);
    assert.equal(namespaceFilter(principal, 'prod'), 'none');
  });

  it('rejects an unknown role, an unscoped agent, and incomparable roles', async () => {
    await assertRejected(await issue('rogue'), /no recognised role/);
    await assertRejected(await issue('agent-everywhere'), /bound to one cluster/);
    await assertRejected(await issue('mixed-roles'), /conflicting roles/);
  });

  it('works with an explicit jwksUri', async () => {
    const direct = createOidcVerifier({
      issuer,
      audience: AUDIENCE,
      jwksUri: `${issuer}/jwks`,
      rolesClaim: ROLES,
      namespacesClaim: NAMESPACES,
    });
    const principal = await direct.verify(await issue('viewer-payments'));
    assert.deepEqual(
      principal.scope,
      { cluster: '*', namespaces: ['payments'] },
      'no cluster claim configured',
    );
  });

  it('refuses a discovery document naming another issuer, and an unreachable issuer', async () => {
    const token = await issue('viewer-payments');
    const slash = createOidcVerifier({
      issuer: `${issuer}/`,
      audience: AUDIENCE,
      rolesClaim: ROLES,
      namespacesClaim: NAMESPACES,
    });
    await assertRejected(token, /^OIDC issuer discovery failed$/, slash);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadIssuer = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const dead = createOidcVerifier({
      issuer: deadIssuer,
      audience: AUDIENCE,
      rolesClaim: ROLES,
      namespacesClaim: NAMESPACES,
    });
    await assertRejected(token, /^OIDC issuer discovery failed$/, dead);
  });

  it('refuses symmetric or `none` algorithms in its configuration', () => {
    for (const algorithms of [['HS256'], ['RS256', 'none'], []]) {
      assert.throws(
        () =>
          createOidcVerifier({
            issuer,
            audience: AUDIENCE,
            algorithms,
            rolesClaim: ROLES,
            namespacesClaim: NAMESPACES,
          }),
        (e: unknown) => e instanceof ContainmentError && e.code === 'CONFIG_INVALID',
      );
    }
  });
});

describe('forged OIDC tokens', () => {
  it('control: a token signed with the real key and correct claims is accepted', async () => {
    // Proves the forgeries below fail for the property each attacks, not because of the helper.
    const principal = await verifier.verify(await sign(viewerClaims(), rsaPrivate, {}));
    assert.equal(principal.subject, 'viewer-payments');
  });

  it('wrong signature: another key under the provider kid', async () => {
    const attacker = await generateKeyPair('RS256');
    await assertRejected(
      await sign(viewerClaims({ [ROLES]: ['admin'] }), attacker.privateKey, {}),
      /signature invalid/,
    );
  });

  it('alg: none', async () => {
    const payload = b64(viewerClaims({ [ROLES]: ['admin'], [NAMESPACES]: '*' }));
    await assertRejected(
      `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`,
      /^OIDC token algorithm not allowed$/,
    );
    await assertRejected(
      `${b64({ alg: 'none', kid: RSA_KID })}.${payload}.`,
      /^OIDC token algorithm not allowed$/,
    );
  });

  it('expired (signed with the real key)', async () => {
    const now = Math.floor(Date.now() / 1000);
    await assertRejected(
      await sign(viewerClaims({ iat: now - 7200, exp: now - 3600 }), rsaPrivate, {}),
      /^OIDC token expired$/,
    );
  });

  it('missing expiry (signed with the real key)', async () => {
    const { exp: _exp, ...claims } = viewerClaims();
    await assertRejected(await sign(claims, rsaPrivate, {}), /claim "exp"/);
  });

  it('wrong audience (a real token issued for another resource)', async () => {
    const token = await issue('admin-all', 'https://other-api.test');
    assert.equal(decodeJwt(token).aud, 'https://other-api.test');
    await assertRejected(token, /claim "aud"/);
  });

  it('wrong issuer (signed with the real key)', async () => {
    await assertRejected(
      await sign(viewerClaims({ iss: 'https://evil.example' }), rsaPrivate, {}),
      /claim "iss"/,
    );
  });

  it("HS256 keyed with the provider's public key (PEM and JWK JSON)", async () => {
    const jwks = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: JWK[] };
    const publicJwk = jwks.keys.find((k) => k.kid === RSA_KID);
    assert.ok(publicJwk);
    const pem = createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const claims = viewerClaims({ [ROLES]: ['admin'], [NAMESPACES]: '*' });
    for (const secret of [pem, JSON.stringify(publicJwk)]) {
      await assertRejected(
        await sign(claims, new TextEncoder().encode(String(secret)), { alg: 'HS256' }),
        /algorithm not allowed/,
      );
    }
  });

  it('tampered payload on a real token', async () => {
    const [header, , signature] = (await issue('viewer-payments')).split('.');
    const payload = b64(viewerClaims({ [ROLES]: ['admin'], [NAMESPACES]: '*', [CLUSTER]: '*' }));
    await assertRejected(`${header}.${payload}.${signature}`, /signature invalid/);
  });

  it('a key embedded in the header, or an unknown kid', async () => {
    const attacker = await generateKeyPair('RS256', { extractable: true });
    const jwk = await exportJWK(attacker.publicKey);
    await assertRejected(await sign(viewerClaims(), attacker.privateKey, { jwk }), /signature invalid/);
    await assertRejected(await sign(viewerClaims(), attacker.privateKey, { kid: 'attacker' }), /unknown key/);
  });

  it('garbage that is not a JWT', async () => {
    await assertRejected('not-a-jwt', /malformed/);
    await assertRejected('a.b.c', /malformed/);
  });
});

describe('authenticate with both token kinds', () => {
  it('routes ctm_ tokens to the API token service and JWTs to OIDC', async () => {
    const db = new Database(':memory:');
    try {
      const tokens = createApiTokens({ store: openSqliteTokenStore(db) });
      const { token } = await tokens.issue({
        name: 'agent',
        role: 'agent',
        scope: { cluster: 'prod', namespaces: '*' },
      });
      const options = { tokens, oidc: verifier };
      assert.equal((await authenticate(`Bearer ${token}`, options)).via, 'token');
      assert.equal((await authenticate(`bearer ${await issue('admin-all')}`, options)).via, 'oidc');
    } finally {
      db.close();
    }
  });
});

describe('principalFromClaims', () => {
  const mapping = { rolesClaim: 'realm_access.roles', namespacesClaim: 'ns' };

  it('reads a dotted claim path and a single-string namespace', () => {
    const p = principalFromClaims(
      { sub: 'u', realm_access: { roles: ['offline', 'policy'] }, ns: 'shop' },
      mapping,
    );
    assert.deepEqual(p, {
      subject: 'u',
      role: 'policy',
      scope: { cluster: '*', namespaces: ['shop'] },
      via: 'oidc',
    });
  });

  it('rejects a missing subject and non-string claims', () => {
    assert.throws(() => principalFromClaims({ realm_access: { roles: ['viewer'] } }, mapping), /no subject/);
    assert.throws(
      () => principalFromClaims({ sub: 'u', realm_access: { roles: [1] } }, mapping),
      /not a string/,
    );
    assert.throws(
      () => principalFromClaims({ sub: 'u', realm_access: { roles: ['viewer'] }, ns: { a: 1 } }, mapping),
      /not a string/,
    );
  });
});
