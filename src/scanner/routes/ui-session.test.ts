/**
 * The dashboard's session cookie and workload search through the real scanner app (SQLite):
 * sign-in sets an HttpOnly SameSite=Strict cookie, the cookie authenticates `/v1`, state-changing
 * cookie calls without the CSRF header or from another origin are refused, and a viewer of `web`
 * finds nothing of `payments` by name, package or advisory id.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startHarness } from '../scanner-harness.test-helper.js';
import type { Harness } from '../scanner-harness.test-helper.js';
import { isCI, sharedDataDir } from '../../testing/shared-data.js';
import { existsSync } from 'node:fs';
import { CLUSTER, reportRealWorkloads } from './dashboard-seed.test-helper.js';
import { SESSION_COOKIE } from './ui-session.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(osvNpm);
if (!haveData) {
  const msg = `shared OSV data not found at ${osvNpm}`;
  if (isCI()) throw new Error(msg);
  console.warn(`\n*** SKIPPED: ${msg} ***\n`);
}

describe('dashboard session and workload search', { skip: !haveData }, () => {
  let h: Harness;
  let viewerToken: string;
  before(async () => {
    h = await startHarness(osvNpm);
    await h.store.createCluster(CLUSTER);
    await reportRealWorkloads(h.app, h.adminToken);
    viewerToken = (
      await h.tokens.issue({
        name: 'web-viewer',
        role: 'viewer',
        scope: { cluster: CLUSTER, namespaces: ['web'] },
      })
    ).token;
  });
  after(async () => h?.close());

  const signIn = async (token: string, headers: Record<string, string> = { 'x-containment-csrf': '1' }) =>
    h.app.inject({ method: 'POST', url: '/ui/session', headers, payload: { token } });
  const cookieOf = (setCookie: string | string[] | undefined): string =>
    String(Array.isArray(setCookie) ? setCookie[0] : setCookie).split(';')[0] as string;

  test('sign-in sets an HttpOnly SameSite=Strict cookie and answers the principal, never the token', async () => {
    const res = await signIn(viewerToken);
    assert.equal(res.statusCode, 200, res.body);
    const setCookie = String(res.headers['set-cookie']);
    assert.match(setCookie, new RegExp(`^${SESSION_COOKIE}=`));
    assert.match(setCookie, /; HttpOnly/);
    assert.match(setCookie, /; SameSite=Strict/);
    assert.doesNotMatch(setCookie, /Secure/, 'plain HTTP: no Secure attribute');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.deepEqual(res.json(), {
      subject: res.json().subject,
      role: 'viewer',
      scope: { cluster: CLUSTER, namespaces: ['web'] },
      via: 'token',
    });
    assert.doesNotMatch(res.body, /ctm_/);
  });

  test('a bad token is refused with its code; sign-in without the CSRF header is refused', async () => {
    const bad = await signIn('ctm_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    assert.equal(bad.statusCode, 401);
    assert.equal(bad.json().error.code, 'UNAUTHENTICATED');
    assert.equal(bad.headers['set-cookie'], undefined);
    const noHeader = await signIn(viewerToken, {});
    assert.equal(noHeader.statusCode, 403);
    assert.equal(noHeader.json().error.code, 'CSRF_REJECTED');
  });

  test('the cookie authenticates /v1 reads; state-changing calls need the header and this origin', async () => {
    const admin = cookieOf((await signIn(h.adminToken)).headers['set-cookie']);
    const read = await h.app.inject({ method: 'GET', url: '/v1/workloads', headers: { cookie: admin } });
    assert.equal(read.statusCode, 200);
    assert.equal(read.json().workloads.length, 3);

    const issued = await h.tokens.issue({
      name: 'victim',
      role: 'viewer',
      scope: { cluster: '*', namespaces: '*' },
    });
    // A cross-site form post carries the cookie (were it not Strict) but can never add the header.
    const forged = await h.app.inject({
      method: 'DELETE',
      url: `/v1/tokens/${issued.info.id}`,
      headers: { cookie: admin },
    });
    assert.equal(forged.statusCode, 403);
    assert.equal(forged.json().error.code, 'CSRF_REJECTED');
    const otherOrigin = await h.app.inject({
      method: 'DELETE',
      url: `/v1/tokens/${issued.info.id}`,
      headers: {
        cookie: admin,
        'x-containment-csrf': '1',
        origin: 'https://evil.example',
        host: 'localhost:80',
      },
    });
    assert.equal(otherOrigin.statusCode, 403);
    assert.equal((await h.tokens.list()).find((t) => t.id === issued.info.id)?.revokedAt, undefined);

    const allowed = await h.app.inject({
      method: 'DELETE',
      url: `/v1/tokens/${issued.info.id}`,
      headers: { cookie: admin, 'x-containment-csrf': '1' },
    });
    assert.equal(allowed.statusCode, 204);
  });

  test("sign-out clears the cookie; a revoked token's cookie no longer authenticates", async () => {
    const issued = await h.tokens.issue({
      name: 'short',
      role: 'viewer',
      scope: { cluster: '*', namespaces: '*' },
    });
    const cookie = cookieOf((await signIn(issued.token)).headers['set-cookie']);
    assert.equal((await h.app.inject({ url: '/ui/session', headers: { cookie } })).statusCode, 200);
    await h.tokens.revoke(issued.info.id);
    const after = await h.app.inject({ url: '/v1/summary', headers: { cookie } });
    assert.equal(after.statusCode, 401);
    const out = await h.app.inject({
      method: 'DELETE',
      url: '/ui/session',
      headers: { cookie, 'x-containment-csrf': '1' },
    });
    assert.equal(out.statusCode, 204);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
  });

  test('a viewer of web finds only web, by name, package and advisory id', async () => {
    const auth = { authorization: `Bearer ${viewerToken}` };
    const search = async (query: string) => {
      const res = await h.app.inject({ url: `/v1/workload-search?${query}`, headers: auth });
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as { total: number; workloads: { workload: { namespace: string; pod: string } }[] };
    };
    const all = await search('');
    assert.equal(all.total, 2);
    assert.ok(all.workloads.every((w) => w.workload.namespace === 'web'));
    assert.equal((await search('q=ledger')).total, 0, 'payments/ledger by name');
    assert.equal((await search('namespace=payments')).total, 0);
    const byAdvisory = await search('q=GHSA-jf85-cpcp-j695');
    assert.deepEqual(
      byAdvisory.workloads.map((w) => w.workload.pod),
      ['storefront'],
    );
    assert.deepEqual(
      (await search('q=lodash')).workloads.map((w) => w.workload.pod),
      ['storefront'],
    );
    // The admin sees the payments workload through the same index.
    const admin = await h.app.inject({
      url: '/v1/workload-search?q=lodash',
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    assert.deepEqual(
      admin
        .json()
        .workloads.map((w: { workload: { pod: string } }) => w.workload.pod)
        .sort(),
      ['ledger', 'storefront'],
    );
    const bySeverity = await search('severity=CRITICAL');
    assert.ok(bySeverity.total <= 1);
    const invalid = await h.app.inject({ url: '/v1/workload-search?severity=WORST', headers: auth });
    assert.equal(invalid.statusCode, 400);
    assert.equal(invalid.json().error.code, 'REQUEST_INVALID');
  });

  test('/ui/ answers with a strict CSP; hashed assets are immutable, the HTML shell is revalidated', async () => {
    const shell = await h.app.inject({ url: '/ui/workloads' });
    if (shell.statusCode === 503) {
      assert.equal(shell.json().error.code, 'UI_NOT_BUILT');
      return;
    }
    assert.equal(shell.statusCode, 200);
    const csp = String(shell.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(shell.headers['cache-control'], 'no-cache');
    const script = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(shell.body)?.[1];
    assert.ok(script, 'the shell loads a hashed script');
    assert.doesNotMatch(shell.body, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    const asset = await h.app.inject({ url: script });
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.match(String(asset.headers['content-type']), /^text\/javascript/);
    const stale = await h.app.inject({ url: '/ui/assets/index-gone.js' });
    assert.equal(stale.statusCode, 404);
  });
});
