import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ContainmentError } from '../errors.js';
import type { ApiTokens, TokenStore } from './api-tokens.js';
import { createApiTokens } from './api-tokens.js';
import { openSqliteTokenStore } from '../storage/tokens/token-store.js';

function rejects(promise: Promise<unknown>, message: RegExp, token?: string): Promise<void> {
  return assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof ContainmentError, `not a ContainmentError: ${String(e)}`);
    assert.equal(e.code, 'UNAUTHENTICATED');
    assert.match(e.message, message);
    if (token) assert.ok(!e.message.includes(token.slice(4)), 'message echoes the token');
    return true;
  });
}

/** Swaps the secret part of a token (after `ctm_<id>_`). */
function withSecret(token: string, secret: string): string {
  return token.slice(0, 'ctm_'.length + 17) + secret;
}

describe('API tokens on SQLite', () => {
  let dir: string;
  let db: Database.Database;
  let store: TokenStore;
  let clock = Date.parse('2025-01-01T00:00:00Z');
  let tokens: ApiTokens;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'containment-tokens-'));
    db = new Database(join(dir, 'auth.db'));
    store = openSqliteTokenStore(db);
    tokens = createApiTokens({ store, pepper: 'server-pepper', now: () => clock });
  });
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers an operator-chosen token: hashed, verifiable, not replaced by a second registration', async () => {
    const given = `ctm_${'ab'.repeat(8)}_${'Z'.repeat(43)}`;
    const scope = { cluster: '*', namespaces: '*' } as const;
    const info = await tokens.register(given, { name: 'bootstrap', role: 'admin', scope });
    assert.equal(info.id, 'ab'.repeat(8));
    assert.equal((await tokens.verify(given)).role, 'admin');
    assert.ok(!JSON.stringify(db.prepare('SELECT * FROM auth_tokens').all()).includes('Z'.repeat(43)));
    const again = await tokens.register(given, { name: 'other', role: 'viewer', scope });
    assert.equal(again.role, 'admin', 'an existing id is returned unchanged');
    await assert.rejects(
      tokens.register('ctm_short', { name: 'x', role: 'admin', scope }),
      /not a Containment API token/,
    );
  });

  it('issues a token that verifies to its role and scope', async () => {
    const { token, info } = await tokens.issue({
      name: 'prod agent',
      role: 'agent',
      scope: { cluster: 'prod', namespaces: '*' },
    });
    assert.match(token, /^ctm_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(token.split('_')[1], info.id);
    const principal = await tokens.verify(token);
    assert.deepEqual(principal, {
      subject: `token:${info.id}`,
      role: 'agent',
      scope: { cluster: 'prod', namespaces: '*' },
      via: 'token',
      tokenId: info.id,
    });
  });

  it('keeps namespace lists through the store', async () => {
    const { token } = await tokens.issue({
      name: 'v',
      role: 'viewer',
      scope: { cluster: '*', namespaces: ['a', 'b'] },
    });
    assert.deepEqual((await tokens.verify(token)).scope, { cluster: '*', namespaces: ['a', 'b'] });
  });

  it('rejects a wrong secret', async () => {
    const { token } = await tokens.issue({
      name: 'x',
      role: 'viewer',
      scope: { cluster: 'prod', namespaces: ['a'] },
    });
    const forged = withSecret(token, 'A'.repeat(43));
    await rejects(tokens.verify(forged), /^invalid API token$/, forged);
  });

  it("rejects a token id combined with another token's secret", async () => {
    const a = await tokens.issue({
      name: 'a',
      role: 'viewer',
      scope: { cluster: 'prod', namespaces: ['a'] },
    });
    const b = await tokens.issue({ name: 'b', role: 'admin', scope: { cluster: '*', namespaces: '*' } });
    const mixed = withSecret(a.token, b.token.slice('ctm_'.length + 17));
    assert.notEqual(mixed, a.token);
    await rejects(tokens.verify(mixed), /^invalid API token$/, mixed);
    const mixed2 = withSecret(b.token, a.token.slice('ctm_'.length + 17));
    await rejects(tokens.verify(mixed2), /^invalid API token$/, mixed2);
  });

  it('rejects an unknown id and malformed tokens', async () => {
    await rejects(tokens.verify(`ctm_0123456789abcdef_${'B'.repeat(43)}`), /^invalid API token$/);
    for (const bad of [
      'ctm_',
      'ctm_zz_abc',
      'ctm_0123456789abcdef_short',
      `ctm_0123456789ABCDEF_${'B'.repeat(43)}`,
    ]) {
      await rejects(tokens.verify(bad), /^malformed API token$/);
    }
  });

  it('rejects a revoked token, and revoking twice reports false', async () => {
    const { token, info } = await tokens.issue({
      name: 'r',
      role: 'policy',
      scope: { cluster: '*', namespaces: ['s'] },
    });
    await tokens.verify(token);
    assert.equal(await tokens.revoke(info.id), true);
    assert.equal(await tokens.revoke(info.id), false);
    assert.equal(await tokens.revoke('0000000000000000'), false);
    await rejects(tokens.verify(token), /^API token revoked$/, token);
    const listed = (await tokens.list()).find((t) => t.id === info.id);
    assert.equal(listed?.revokedAt, clock);
  });

  it('rejects an expired token, accepts it before expiry', async () => {
    const { token } = await tokens.issue({
      name: 'e',
      role: 'viewer',
      scope: { cluster: 'prod', namespaces: '*' },
      expiresAt: clock + 60_000,
    });
    assert.equal((await tokens.verify(token)).role, 'viewer');
    const saved = clock;
    clock += 60_000;
    try {
      await rejects(tokens.verify(token), /^API token expired$/, token);
    } finally {
      clock = saved;
    }
  });

  it('refuses to issue an agent token for every cluster', async () => {
    await assert.rejects(
      tokens.issue({ name: 'bad', role: 'agent', scope: { cluster: '*', namespaces: '*' } }),
      (e: unknown) => e instanceof ContainmentError && e.code === 'USAGE',
    );
  });

  it('lists tokens without hashes', async () => {
    const list = await tokens.list();
    assert.ok(list.length >= 5);
    for (const info of list) assert.ok(!('hash' in info));
  });

  it('never stores the secret: not in rows, not in the database files', async () => {
    const { token, info } = await tokens.issue({
      name: 'secret-check',
      role: 'admin',
      scope: { cluster: '*', namespaces: '*' },
    });
    const secret = token.slice('ctm_'.length + 17);
    const row = db.prepare('SELECT * FROM auth_tokens WHERE id = ?').get(info.id) as Record<string, unknown>;
    assert.ok(row, 'row exists');
    for (const value of Object.values(row)) {
      assert.ok(!String(value).includes(secret), 'a column holds the secret');
      assert.ok(!String(value).includes(token), 'a column holds the token');
    }
    assert.match(String(row.hash), /^[0-9a-f]{64}$/);
    db.pragma('wal_checkpoint(TRUNCATE)');
    for (const file of readdirSync(dir)) {
      assert.ok(!readFileSync(join(dir, file)).includes(secret), `${file} holds the secret`);
    }
  });

  it('survives reopening the database, and a different pepper rejects every token', async () => {
    const { token } = await tokens.issue({
      name: 'p',
      role: 'viewer',
      scope: { cluster: 'prod', namespaces: '*' },
    });
    const db2 = new Database(join(dir, 'auth.db'));
    try {
      const reopened = openSqliteTokenStore(db2);
      assert.equal(
        (await createApiTokens({ store: reopened, pepper: 'server-pepper' }).verify(token)).role,
        'viewer',
      );
      await rejects(
        createApiTokens({ store: reopened, pepper: 'other' }).verify(token),
        /^invalid API token$/,
      );
      await rejects(createApiTokens({ store: reopened }).verify(token), /^invalid API token$/);
    } finally {
      db2.close();
    }
  });

  it('works without a pepper (plain SHA-256)', async () => {
    const plain = createApiTokens({ store });
    const { token } = await plain.issue({
      name: 'np',
      role: 'analyst',
      scope: { cluster: '*', namespaces: '*' },
    });
    assert.equal((await plain.verify(token)).role, 'analyst');
    await rejects(tokens.verify(token), /^invalid API token$/);
  });

  it('reports a tampered row as DB_UNREADABLE instead of trusting it', async () => {
    const { token, info } = await tokens.issue({
      name: 't',
      role: 'viewer',
      scope: { cluster: 'prod', namespaces: ['a'] },
    });
    db.prepare('UPDATE auth_tokens SET namespaces = ? WHERE id = ?').run('{"not":"a list"}', info.id);
    await assert.rejects(
      tokens.verify(token),
      (e: unknown) => e instanceof ContainmentError && e.code === 'DB_UNREADABLE',
    );
  });
});
