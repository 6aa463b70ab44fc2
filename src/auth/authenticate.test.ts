import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { ContainmentError } from '../errors.js';
import type { ApiTokens } from './api-tokens.js';
import { createApiTokens } from './api-tokens.js';
import { authenticate } from './authenticate.js';
import { openSqliteTokenStore } from '../storage/tokens/token-store.js';

// OIDC routing is exercised against a real provider in oidc.test.ts; this file covers the header
// and the API token path.
describe('authenticate', () => {
  let db: Database.Database;
  let tokens: ApiTokens;
  let token: string;

  before(async () => {
    db = new Database(':memory:');
    tokens = createApiTokens({ store: openSqliteTokenStore(db) });
    ({ token } = await tokens.issue({
      name: 'ci',
      role: 'viewer',
      scope: { cluster: 'prod', namespaces: ['web'] },
    }));
  });
  after(() => db.close());

  async function unauthenticated(header: string | undefined, message: RegExp): Promise<void> {
    await assert.rejects(authenticate(header, { tokens }), (e: unknown) => {
      assert.ok(e instanceof ContainmentError);
      assert.equal(e.code, 'UNAUTHENTICATED');
      assert.match(e.message, message);
      assert.ok(!e.message.includes(token.slice(4, 30)), 'message echoes the token');
      return true;
    });
  }

  it('accepts an API token with any case of the scheme and extra spaces', async () => {
    for (const header of [`Bearer ${token}`, `bearer ${token}`, `BEARER   ${token} `]) {
      const principal = await authenticate(header, { tokens });
      assert.equal(principal.role, 'viewer');
      assert.deepEqual(principal.scope, { cluster: 'prod', namespaces: ['web'] });
    }
  });

  it('rejects a missing or empty header', async () => {
    await unauthenticated(undefined, /^missing bearer token$/);
    await unauthenticated('  ', /^missing bearer token$/);
  });

  it('rejects other schemes and malformed bearer values without echoing them', async () => {
    await unauthenticated(
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      /^authorization header is not a bearer token$/,
    );
    await unauthenticated('Bearer', /^authorization header is not a bearer token$/);
    await unauthenticated(`Bearer ${token} extra`, /^authorization header is not a bearer token$/);
    await unauthenticated(`Bearer${token}`, /^authorization header is not a bearer token$/);
  });

  it('rejects a forged API token and a JWT when no OIDC issuer is configured', async () => {
    await unauthenticated(
      `Bearer ${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`,
      /^invalid API token$/,
    );
    await unauthenticated('Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', /^unrecognised bearer token$/);
  });

  it('lets storage failures through instead of reporting them as bad credentials', async () => {
    const broken = { verify: () => Promise.reject(new Error('database is locked')) };
    await assert.rejects(authenticate(`Bearer ${token}`, { tokens: broken }), /database is locked/);
  });
});
