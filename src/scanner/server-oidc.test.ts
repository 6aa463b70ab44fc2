/**
 * The scanner server (runScannerServer, listening on loopback) accepting OIDC access tokens from a
 * real `oidc-provider`: a namespace-scoped viewer sees only its namespace, and forged tokens get 401.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT, generateKeyPair } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { RSA_KID, startOidcProvider } from '../auth/oidc-provider.test-helper.js';
import type { TestOidcProvider } from '../auth/oidc-provider.test-helper.js';
import { isCI, sharedDataDir } from '../testing/shared-data.js';
import { importFromPath } from '../vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { runScannerServer } from './run-server.js';
import type { RunningServer } from './run-server.js';
import { npmReport } from './scanner-harness.test-helper.js';

const AUDIENCE = 'https://scanner.test';
const ADMIN = `ctm_00112233445566aa_${'c'.repeat(43)}`;
const CLIENTS: Record<string, Record<string, unknown>> = {
  'viewer-a': { roles: ['viewer'], namespaces: ['a'], cluster: 'prod' },
  'analyst-all': { roles: 'analyst', namespaces: '*', cluster: 'prod' },
};

type Json = Record<string, unknown>;

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(osvNpm);
if (!haveData) {
  if (isCI()) throw new Error(`shared OSV data not found at ${osvNpm}`);
  console.warn(`\n*** SKIPPED: shared OSV data not found at ${osvNpm} ***\n`);
}

let provider: TestOidcProvider;
let server: RunningServer;
let dir: string;

async function call(token: string | undefined, method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Json };
}

function claims(extra: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    ...CLIENTS['viewer-a'],
    sub: 'viewer-a',
    iss: provider.issuer,
    aud: AUDIENCE,
    iat: now,
    exp: now + 300,
    ...extra,
  };
}

function sign(payload: JWTPayload, key: CryptoKey | Uint8Array, alg = 'RS256'): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, kid: RSA_KID }).sign(key);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('scanner server with OIDC', { skip: !haveData }, () => {
  before(async () => {
    provider = await startOidcProvider({ clients: CLIENTS });
    dir = mkdtempSync(join(tmpdir(), 'containment-oidc-server-'));
    const advisories = openSqliteAdvisoryStore(join(dir, 'vulndb.sqlite'), { create: true });
    await importFromPath(advisories, osvNpm);
    advisories.close();
    server = await runScannerServer({
      host: '127.0.0.1',
      port: 0,
      dataDir: dir,
      advisoryDbPath: join(dir, 'vulndb.sqlite'),
      triggerAllow: [],
      adminToken: ADMIN,
      oidc: {
        issuer: provider.issuer,
        audience: AUDIENCE,
        rolesClaim: 'roles',
        namespacesClaim: 'namespaces',
        clusterClaim: 'cluster',
      },
    });
    const agent = (await call(ADMIN, 'POST', '/v1/clusters', { name: 'prod' })).body.agentToken as string;
    for (const [ns, pkg] of [
      ['a', ['minimist', '1.2.5']],
      ['b', ['lodash', '4.17.20']],
    ] as const) {
      assert.equal(
        (await call(agent, 'POST', '/v1/reports', npmReport('prod', ns, `pod-${ns}`, [pkg]))).status,
        201,
      );
    }
  });
  after(async () => {
    await server?.close();
    provider?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a viewer token for namespace a sees only a, and may not write', async () => {
    const token = await provider.issue('viewer-a', AUDIENCE);
    for (const path of [
      '/v1/workloads',
      '/v1/scans',
      '/v1/workloads?namespace=b',
      '/v1/scans?cluster=prod',
    ]) {
      const res = await call(token, 'GET', path);
      assert.equal(res.status, 200, path);
      const rows = (res.body.workloads ?? res.body.scans) as { workload: Json }[];
      assert.deepEqual(
        rows.map((r) => r.workload.namespace),
        path.includes('namespace=b') ? [] : ['a'],
        path,
      );
    }
    const summary = (await call(token, 'GET', '/v1/summary')).body.namespaces as Json[];
    assert.deepEqual(
      summary.map((s) => s.namespace),
      ['a'],
    );
    assert.equal((await call(token, 'GET', '/v1/findings?cluster=prod&namespace=a&pod=pod-a')).status, 200);
    assert.equal((await call(token, 'GET', '/v1/findings?cluster=prod&namespace=b&pod=pod-b')).status, 403);
    assert.equal((await call(token, 'POST', '/v1/clusters', { name: 'other' })).status, 403);
    assert.equal((await call(token, 'GET', '/metrics')).status, 403);
    // The wider token from the same provider does see both: the narrowing above came from the claims.
    const analyst = await provider.issue('analyst-all', AUDIENCE);
    const all = (await call(analyst, 'GET', '/v1/workloads')).body.workloads as { workload: Json }[];
    assert.deepEqual(all.map((r) => r.workload.namespace).sort(), ['a', 'b']);
  });

  test('forged tokens get 401 on /v1', async () => {
    const control = await call(await sign(claims(), provider.rsaPrivate), 'GET', '/v1/workloads');
    assert.equal(
      control.status,
      200,
      'a token signed with the real key passes: the forgeries fail for their flaw',
    );

    const now = Math.floor(Date.now() / 1000);
    const attacker = await generateKeyPair('RS256');
    const jwks = (await (await fetch(`${provider.issuer}/jwks`)).json()) as { keys: JWK[] };
    const pem = createPublicKey({
      key: jwks.keys.find((k) => k.kid === RSA_KID) as JsonWebKey,
      format: 'jwk',
    }).export({ type: 'spki', format: 'pem' });
    const wide = { namespaces: '*', roles: ['admin'], cluster: '*' };
    const forged: Record<string, string> = {
      'wrong signature': await sign(claims(wide), attacker.privateKey),
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims(wide))}.`,
      expired: await sign(claims({ iat: now - 7200, exp: now - 3600 }), provider.rsaPrivate),
      'wrong audience': await provider.issue('viewer-a', 'https://other-api.test'),
      'HS256 keyed with the public key': await sign(
        claims(wide),
        new TextEncoder().encode(String(pem)),
        'HS256',
      ),
    };
    for (const [name, token] of Object.entries(forged)) {
      const res = await call(token, 'GET', '/v1/workloads');
      assert.equal(res.status, 401, name);
      assert.equal((res.body.error as Json).code, 'UNAUTHENTICATED', name);
    }
  });
});
