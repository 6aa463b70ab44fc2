/**
 * Per-token rate limiting on a listening scanner: 429 with Retry-After, other callers unaffected;
 * and the dashboard's sign-in (`POST /ui/session`), limited per client address.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isCI, sharedDataDir } from '../testing/shared-data.js';
import { startHarness } from './scanner-harness.test-helper.js';
import type { Harness } from './scanner-harness.test-helper.js';

const osvNpm = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(osvNpm);
if (!haveData && isCI()) throw new Error(`shared OSV data not found at ${osvNpm}`);

const MAX = 5;
let h: Harness;
let url: string;

async function get(path: string, token?: string): Promise<Response> {
  return fetch(`${url}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
}

async function viewerToken(): Promise<string> {
  return (await h.tokens.issue({ name: 'v', role: 'viewer', scope: { cluster: '*', namespaces: '*' } }))
    .token;
}

describe('rate limiting', { skip: !haveData }, () => {
  before(async () => {
    // A long window: nothing resets while the test runs.
    h = await startHarness(osvNpm, { rateLimit: { max: MAX, windowMs: 60_000 } });
    url = await h.app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => h?.close());

  test('a token over its limit gets 429 with Retry-After; another token is unaffected', async () => {
    const first = await viewerToken();
    const second = await viewerToken();
    for (let i = 0; i < MAX; i++)
      assert.equal((await get('/v1/clusters', first)).status, 200, `request ${i + 1}`);
    const limited = await get('/v1/clusters', first);
    assert.equal(limited.status, 429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
      `Retry-After ${retryAfter}`,
    );
    assert.equal(((await limited.json()) as { error: { code: string } }).error.code, 'RATE_LIMITED');
    // The limit follows the token, not the route: /metrics counts against the same budget.
    assert.equal((await get('/metrics', first)).status, 429);
    assert.equal((await get('/v1/clusters', second)).status, 200);
  });

  test('unauthenticated requests are limited per address, apart from tokens', async () => {
    const statuses: number[] = [];
    for (let i = 0; i <= MAX; i++)
      statuses.push((await get('/v1/clusters', `ctm_0123456789abcdef_${'A'.repeat(43)}`)).status);
    assert.deepEqual(statuses, [...Array<number>(MAX).fill(401), 429]);
    assert.equal((await get('/v1/clusters')).status, 429, 'no token at all: the same address budget');
    assert.equal(
      (await get('/v1/clusters', h.adminToken)).status,
      200,
      'a valid token from that address still works',
    );
    assert.equal((await get('/healthz')).status, 200, 'health probes are never limited');
  });
});

describe('dashboard sign-in rate limiting', { skip: !haveData }, () => {
  const SIGN_INS = 3;
  const WINDOW_MS = 1000;
  let s: Harness;
  before(async () => {
    s = await startHarness(osvNpm, { signInRateLimit: { max: SIGN_INS, windowMs: WINDOW_MS } });
  });
  after(async () => s?.close());

  const signIn = (token: string, remoteAddress = '192.0.2.7') =>
    s.app.inject({
      method: 'POST',
      url: '/ui/session',
      remoteAddress,
      headers: { 'x-containment-csrf': '1' },
      payload: { token },
    });

  test('too many sign-ins from one address get 429 RATE_LIMITED, even with a good token, then it recovers', async () => {
    const guess = `ctm_0123456789abcdef_${'B'.repeat(43)}`;
    const statuses: number[] = [];
    for (let i = 0; i < SIGN_INS; i++) statuses.push((await signIn(guess)).statusCode);
    assert.deepEqual(statuses, [401, 401, 401]);
    const limited = await signIn(s.adminToken);
    assert.equal(limited.statusCode, 429, 'a correct token cannot slip past the limit');
    assert.equal(limited.json().error.code, 'RATE_LIMITED');
    assert.equal(limited.headers['set-cookie'], undefined, 'no session while limited');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    assert.equal((await signIn(s.adminToken, '192.0.2.8')).statusCode, 200, 'another address is unaffected');
    assert.equal(
      (
        await s.app.inject({
          url: '/v1/clusters',
          remoteAddress: '192.0.2.7',
          headers: { authorization: `Bearer ${s.adminToken}` },
        })
      ).statusCode,
      200,
      'the API itself is not limited by sign-ins',
    );
    // After the window the address may sign in again.
    await new Promise((r) => setTimeout(r, WINDOW_MS + 100));
    const again = await signIn(s.adminToken);
    assert.equal(again.statusCode, 200, again.body);
    assert.match(String(again.headers['set-cookie']), /^ctm_session=/);
  });
});
