/**
 * Web actions on a real runtime: JWTs from a real OpenID provider (`oidc-provider` on loopback) and
 * forged ones that must all be refused (wrong audience, wrong issuer, expired, `alg: none`, HS256
 * keyed with the provider's public key, a missing role), input threats reported or blocked before
 * the action runs, and an event-scoped policy that a web caller cannot point at a workload. Every
 * refusal must be in the namespace's security-event log.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import type { JWK, JWTPayload } from 'jose';
import { RSA_KID, startOidcProvider } from '../auth/oidc-provider.test-helper.js';
import type { TestOidcProvider } from '../auth/oidc-provider.test-helper.js';
import { ErrorCodes } from '../errors.js';
import { startHarness } from './functions-harness.test-helper.js';
import type { AnyJson, Harness } from './functions-harness.test-helper.js';
import { PolicySdkHost, httpEnforcement, httpFindings } from './host/policy-sdk-host.js';

const AUDIENCE = 'https://orders.example.test';
const CLIENTS: Record<string, Record<string, unknown>> = {
  writer: { roles: ['orders:write', 'staff'] },
  'perm-writer': { permissions: ['orders:write'] },
  reader: { roles: ['orders:read'] },
};

const ECHO = `function main(p) { return { user: p.__ow_user ?? null, amount: p.amount ?? null, method: p.__ow_method,
  sawAuth: 'authorization' in p.__ow_headers }; }`;

describe('web actions', () => {
  let provider: TestOidcProvider;
  let h: Harness;

  const web = async (
    path: string,
    init: {
      method?: string;
      token?: string;
      body?: string;
      type?: string;
      headers?: Record<string, string>;
    } = {},
  ): Promise<{ status: number; body: AnyJson }> => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
    if (init.body !== undefined) headers['content-type'] = init.type ?? 'application/json';
    const res = await fetch(`${h.url}/api/v1/web/guest/${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers,
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    const text = await res.text();
    let body: AnyJson = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body };
  };
  const events = async (): Promise<AnyJson[]> =>
    (await h.call('GET', '/api/v1/namespaces/_/security-events?limit=1000')).body as AnyJson[];
  const activations = async (name: string): Promise<number> =>
    ((await h.call('GET', `/api/v1/namespaces/_/activations?name=${name}&limit=200`)).body as unknown[])
      .length;

  const forge = (claims: JWTPayload, header: Record<string, unknown> = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: RSA_KID, ...header });
  const claims = (extra: JWTPayload = {}): JWTPayload => {
    const now = Math.floor(Date.now() / 1000);
    return {
      sub: 'writer',
      iss: provider.issuer,
      aud: AUDIENCE,
      iat: now,
      exp: now + 300,
      roles: ['orders:write'],
      ...extra,
    };
  };

  before(async () => {
    provider = await startOidcProvider({ clients: CLIENTS });
    // Policies have credentials, but the enforcer is unreachable: a call that got past the scope check fails.
    const policyHost = new PolicySdkHost({
      credentials: () => ({ cluster: 'local', scannerToken: 'x', enforcerToken: 'x', namespaces: ['local'] }),
      findings: httpFindings('http://127.0.0.1:9'),
      enforcement: httpEnforcement('http://127.0.0.1:9'),
    });
    h = await startHarness({ policyHost, rateLimit: false });
    const settings = await h.call('PUT', '/api/v1/namespaces/_/settings/web-auth', {
      issuer: provider.issuer,
      audience: AUDIENCE,
      jwksUrl: `${provider.issuer}/jwks`,
    });
    assert.equal(settings.status, 200, JSON.stringify(settings.body));
    const put = async (name: string, annotations: { key: string; value: unknown }[], code = ECHO) => {
      const r = await h.call('PUT', `/api/v1/namespaces/_/actions/${name}?overwrite=true`, {
        exec: { kind: 'nodejs:20', code },
        annotations: [{ key: 'web-export', value: true }, ...annotations],
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    };
    await put('orders', [
      { key: 'containment.dev/auth', value: 'jwt' },
      { key: 'containment.dev/required-roles', value: ['orders:write'] },
    ]);
    await put('api-scope', [
      { key: 'containment.dev/auth', value: 'jwt' },
      { key: 'containment.dev/required-roles', value: 'api' },
    ]);
    await put('open', []);
    await put('guarded', [{ key: 'containment.dev/input-threats', value: 'block' }]);
    await put('watched', [{ key: 'containment.dev/input-threats', value: 'report' }]);
    await put(
      'isolate',
      [],
      `import { kubernetes } from '@containment/policy-sdk';
       export async function main(p) {
         try { await kubernetes.quarantine('local/web-1'); return { refused: null }; }
         catch (e) { return { refused: String(e.message) }; }
       }`,
    );
    const hidden = await h.call('PUT', '/api/v1/namespaces/_/actions/hidden', {
      exec: { kind: 'nodejs:20', code: ECHO },
    });
    assert.equal(hidden.status, 200);
  });
  after(async () => {
    await h?.close();
    provider?.close();
  });

  describe('JWT', () => {
    it('runs the action for a valid token from the provider, with the role from roles, permissions or scope', async () => {
      for (const client of ['writer', 'perm-writer']) {
        const token = await provider.issue(client, AUDIENCE);
        const r = await web('default/orders.json', { token, body: JSON.stringify({ amount: 3 }) });
        assert.equal(r.status, 200, `${client}: ${JSON.stringify(r.body)}`);
        assert.deepEqual(r.body, { user: client, amount: 3, method: 'post', sawAuth: false });
      }
      // The provider grants the scope `api` (space-separated `scope` claim).
      const scoped = await web('default/api-scope.json', { token: await provider.issue('reader', AUDIENCE) });
      assert.equal(scoped.status, 200, JSON.stringify(scoped.body));
      assert.equal(scoped.body.user, 'reader');
    });

    it('401 UNAUTHENTICATED: no token, wrong audience, wrong issuer, expired, alg none, HS256 keyed with the public key', async () => {
      const before = await activations('orders');
      const jwks = (await (await fetch(`${provider.issuer}/jwks`)).json()) as { keys: JWK[] };
      const pem = createPublicKey({
        key: jwks.keys.find((k) => k.kid === RSA_KID) as JsonWebKey,
        format: 'jwk',
      }).export({ type: 'spki', format: 'pem' });
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const past = Math.floor(Date.now() / 1000) - 3600;
      const tokens: Record<string, string | undefined> = {
        none: undefined,
        'wrong audience': await provider.issue('writer', 'https://other.example.test'),
        'wrong issuer': await forge(claims({ iss: 'https://evil.example.test' })).sign(provider.rsaPrivate),
        expired: await forge(claims({ iat: past - 600, exp: past })).sign(provider.rsaPrivate),
        'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`,
        'HS256 with the public key': await forge(claims(), { alg: 'HS256' }).sign(
          new TextEncoder().encode(String(pem)),
        ),
        'tampered payload': (() => undefined)(),
      };
      const real = await provider.issue('reader', AUDIENCE);
      const [header, , signature] = real.split('.');
      tokens['tampered payload'] = `${header}.${b64(claims({ sub: 'reader' }))}.${signature}`;
      const eventsBefore = (await events()).length;
      for (const [what, token] of Object.entries(tokens)) {
        const r = await web('default/orders.json', { ...(token === undefined ? {} : { token }), body: '{}' });
        assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.errorCode, ErrorCodes.UNAUTHENTICATED, what);
      }
      assert.equal(await activations('orders'), before, 'the action never ran');
      const failed = (await events()).slice(eventsBefore).filter((e) => e.kind === 'authentication-failed');
      assert.equal(failed.length, Object.keys(tokens).length);
      assert.ok(failed.some((e) => /expired/.test(e.reason)));
      assert.ok(failed.some((e) => /algorithm not allowed/.test(e.reason)));
      assert.ok(failed.every((e) => e.endpoint === '/api/v1/web/guest/default/orders.json'));
    });

    it('403 FORBIDDEN: a valid token without the required role', async () => {
      const r = await web('default/orders.json', {
        token: await provider.issue('reader', AUDIENCE),
        body: '{}',
      });
      assert.equal(r.status, 403);
      assert.equal(r.body.errorCode, ErrorCodes.FORBIDDEN);
      const last = (await events()).at(-1);
      assert.equal(last.kind, 'access-denied');
      assert.match(last.reason, /lacks orders:write/);
    });

    it('refuses settings that would weaken verification, and a misspelt annotation', async () => {
      const bad = [
        {
          issuer: provider.issuer,
          audience: AUDIENCE,
          jwksUrl: `${provider.issuer}/jwks`,
          algorithms: ['HS256'],
        },
        {
          issuer: provider.issuer,
          audience: AUDIENCE,
          jwksUrl: `${provider.issuer}/jwks`,
          algorithms: ['none'],
        },
        { issuer: provider.issuer, audience: AUDIENCE, jwksUrl: 'http://169.254.169.254/jwks' },
        { issuer: provider.issuer, audience: AUDIENCE, jwksUrl: 'file:///etc/jwks.json' },
        { issuer: provider.issuer, audience: AUDIENCE },
      ];
      for (const body of bad) {
        const r = await h.call('PUT', '/api/v1/namespaces/_/settings/web-auth', body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.equal(r.body.errorCode, ErrorCodes.CONFIG_INVALID);
      }
      assert.equal(
        (await h.call('GET', '/api/v1/namespaces/_/settings/web-auth')).body.jwksUrl,
        `${provider.issuer}/jwks`,
      );
      const misspelt = await h.call('PUT', '/api/v1/namespaces/_/actions/typo', {
        exec: { kind: 'nodejs:20', code: ECHO },
        annotations: [{ key: 'containment.dev/auth', value: 'JWT' }],
      });
      assert.equal(misspelt.status, 400);
      assert.equal(misspelt.body.errorCode, ErrorCodes.CONFIG_INVALID);
    });
  });

  describe('web actions without JWT', () => {
    it('runs an exported action, hides an unexported one, and keeps __ow_* for the runtime', async () => {
      const r = await web('default/open.json?amount=5&__ow_user=admin');
      assert.deepEqual(r.body, { user: null, amount: '5', method: 'get', sawAuth: false });
      assert.equal((await web('default/hidden.json')).status, 404);
      assert.equal((await web('default/missing.json')).status, 404);
      assert.equal((await fetch(`${h.url}/api/v1/web/nobody/default/open.json`)).status, 404);
    });

    it('an event-scoped policy behind a web action cannot be pointed at a workload', async () => {
      const r = await web('default/isolate.json', {
        body: JSON.stringify({ data: { workload: { cluster: 'local', namespace: 'local', pod: 'web-1' } } }),
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.match(r.body.refused, /^SCOPE_DENIED: .*no triggering event/);
    });
  });

  describe('input threats', () => {
    it('block: 400 INPUT_THREAT before the action runs, from the query, a JSON body or a form', async () => {
      const before = await activations('guarded');
      const attacks: [string, Parameters<typeof web>[1]][] = [
        [`default/guarded.json?q=${encodeURIComponent("' OR '1'='1")}`, {}],
        ['default/guarded.json', { body: JSON.stringify({ comment: '<img src=x onerror=alert(1)>' }) }],
        [
          'default/guarded.json',
          { body: 'file=..%2f..%2f..%2fetc%2fpasswd', type: 'application/x-www-form-urlencoded' },
        ],
        [
          'default/guarded.json',
          { body: JSON.stringify({ hook: 'http://169.254.169.254/latest/meta-data/' }) },
        ],
        ['default/guarded.json', { body: 'host=8.8.8.8; cat /etc/passwd', type: 'text/plain' }],
      ];
      for (const [path, init] of attacks) {
        const r = await web(path, init);
        assert.equal(r.status, 400, `${path} ${init?.body ?? ''}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.errorCode, ErrorCodes.INPUT_THREAT);
      }
      assert.equal(await activations('guarded'), before, 'no attack reached the action');
      const logged = (await events()).filter((e) => e.kind === 'input-threat' && /guarded/.test(e.endpoint));
      assert.equal(logged.length, attacks.length);
      assert.match(logged[0].reason, /^block: sql-injection/);
      const ok = await web('default/guarded.json', {
        body: JSON.stringify({ amount: 2, note: "O'Brien's order" }),
      });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.amount, 2);
    });

    it('report: the action runs and the match is logged', async () => {
      const r = await web('default/watched.json', {
        body: JSON.stringify({ amount: '1; DROP TABLE orders' }),
      });
      assert.equal(r.status, 200);
      assert.equal(r.body.amount, '1; DROP TABLE orders');
      const last = (await events()).at(-1);
      assert.equal(last.kind, 'input-threat');
      assert.match(last.reason, /^report: sql-injection \(sqli-stacked\) in body\.amount/);
    });

    it('off by default: the same input reaches an action without the annotation, unlogged', async () => {
      const count = (await events()).length;
      const r = await web('default/open.json', { body: JSON.stringify({ amount: "' OR '1'='1" }) });
      assert.equal(r.status, 200);
      assert.equal((await events()).length, count);
    });
  });
});
