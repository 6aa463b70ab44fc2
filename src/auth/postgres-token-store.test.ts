import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { ContainmentError } from '../errors.js';
import { createTestDatabase, postgresReachable, postgresWhat } from '../testing/postgres.js';
import type { TestDatabase } from '../testing/postgres.js';
import { requireOrSkip } from '../testing/shared-data.js';
import { createApiTokens } from './api-tokens.js';
import type { ApiTokens, TokenStore } from './api-tokens.js';
import { openPostgresTokenStore } from './postgres-token-store.js';

const available = await postgresReachable();
let database: TestDatabase | undefined;
/** Two pools on one database: two scanner replicas. */
let poolA: pg.Pool;
let poolB: pg.Pool;
let storeA: TokenStore;
let storeB: TokenStore;
let clock = Date.parse('2025-01-01T00:00:00.123Z');
let tokens: ApiTokens;

before(async () => {
  if (!available) return;
  database = await createTestDatabase('tokens');
  poolA = new pg.Pool({ connectionString: database.url, max: 3 });
  poolB = new pg.Pool({ connectionString: database.url, max: 3 });
  // Replicas starting together both create the table.
  [storeA, storeB] = await Promise.all([openPostgresTokenStore(poolA), openPostgresTokenStore(poolB)]);
  tokens = createApiTokens({ store: storeA, pepper: 'pepper', now: () => clock });
});
after(async () => {
  if (!database) return;
  await poolA.end();
  await poolB.end();
  await database.drop();
});

const need = (t: TestContext): boolean => requireOrSkip(t, available, postgresWhat);

test('issued tokens verify through another replica, with their scope, expiry and revocation', async (t) => {
  if (!need(t)) return;
  const { token, info } = await tokens.issue({
    name: 'viewer',
    role: 'viewer',
    scope: { cluster: 'prod', namespaces: ['a', 'b'] },
    expiresAt: clock + 60_000,
  });
  const replicaB = createApiTokens({ store: storeB, pepper: 'pepper', now: () => clock });
  const principal = await replicaB.verify(token);
  assert.deepEqual(principal.scope, { cluster: 'prod', namespaces: ['a', 'b'] });
  assert.equal(principal.role, 'viewer');
  const stored = await storeB.get(info.id);
  assert.equal(stored?.expiresAt, clock + 60_000);
  assert.equal(stored.createdAt, clock);

  await assert.rejects(createApiTokens({ store: storeB, pepper: 'other' }).verify(token), {
    code: 'UNAUTHENTICATED',
  });
  assert.equal(await replicaB.revoke(info.id), true);
  assert.equal(await tokens.revoke(info.id), false);
  assert.equal(await storeA.revoke('0000000000000000', clock), false);
  await assert.rejects(tokens.verify(token), { code: 'UNAUTHENTICATED', message: 'API token revoked' });
  assert.equal((await storeA.get(info.id))?.revokedAt, clock);
});

test('lists in creation order; never stores the secret', async (t) => {
  if (!need(t)) return;
  clock += 1000;
  const { token, info } = await tokens.issue({
    name: 'admin',
    role: 'admin',
    scope: { cluster: '*', namespaces: '*' },
  });
  const listed = await storeB.list();
  assert.equal(listed.at(-1)?.id, info.id);
  assert.deepEqual(listed.at(-1)?.scope, { cluster: '*', namespaces: '*' });
  assert.ok(listed.every((s, i) => i === 0 || listed[i - 1]!.createdAt <= s.createdAt));
  const secret = token.slice('ctm_'.length + 17);
  const { rows } = await poolA.query('SELECT * FROM auth_tokens');
  const dump = JSON.stringify(rows);
  assert.ok(!dump.includes(secret) && !dump.includes(token), 'a column holds the secret');
});

test('two replicas registering one bootstrap token at once both succeed; one row', async (t) => {
  if (!need(t)) return;
  const given = `ctm_${'cd'.repeat(8)}_${'Q'.repeat(43)}`;
  const input = { name: 'bootstrap', role: 'admin', scope: { cluster: '*', namespaces: '*' } } as const;
  const [a, b] = await Promise.all([
    createApiTokens({ store: storeA }).register(given, input),
    createApiTokens({ store: storeB }).register(given, input),
  ]);
  assert.equal(a.id, b.id);
  const { rows } = await poolA.query('SELECT count(*)::int AS n FROM auth_tokens WHERE id = $1', [a.id]);
  assert.equal((rows[0] as { n: number }).n, 1);
  assert.equal((await createApiTokens({ store: storeB }).verify(given)).role, 'admin');

  // The same id with another hash or grant is a clash, not a silent no-op.
  const stored = (await storeA.get(a.id))!;
  for (const clash of [
    { ...stored, hash: '0'.repeat(64) },
    { ...stored, role: 'viewer' as const },
    { ...stored, scope: { cluster: 'prod', namespaces: '*' as const } },
  ]) {
    await assert.rejects(
      storeB.insert(clash),
      (e: unknown) => e instanceof ContainmentError && e.code === 'USAGE',
    );
  }
  assert.equal((await storeA.get(a.id))?.hash, stored.hash);
});

test('a tampered row is DB_UNREADABLE, not trusted', async (t) => {
  if (!need(t)) return;
  const { token, info } = await tokens.issue({
    name: 't',
    role: 'viewer',
    scope: { cluster: 'prod', namespaces: ['a'] },
  });
  await poolA.query(`UPDATE auth_tokens SET namespaces = '{"not":"a list"}' WHERE id = $1`, [info.id]);
  await assert.rejects(
    tokens.verify(token),
    (e: unknown) => e instanceof ContainmentError && e.code === 'DB_UNREADABLE',
  );
  // A role outside the known ones cannot even be written.
  await assert.rejects(poolA.query(`UPDATE auth_tokens SET role = 'root' WHERE id = $1`, [info.id]), /check/);
});
