import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { createApiTokens } from '../../auth/api-tokens.js';
import type { ApiTokens, TokenStore } from '../../auth/api-tokens.js';
import { ContainmentError } from '../../errors.js';
import { requireOrSkip } from '../../testing/shared-data.js';
import { testEngines } from '../engines.test-helper.js';
import type { Connection } from '../engines.test-helper.js';
import { openPostgresTokenStore, openSqliteTokenStore } from './token-store.js';

const { engines, cleanup } = await testEngines('tokens');
after(cleanup);

const open = (c: Connection): Promise<TokenStore> =>
  c.engine === 'sqlite' ? Promise.resolve(openSqliteTokenStore(c.sqlite)) : openPostgresTokenStore(c.pool);

for (const engine of engines) {
  describe(`token store (${engine.name})`, () => {
    /** Two connections on one database: two processes, or two scanner replicas. */
    let conA: Connection;
    let conB: Connection;
    let storeA: TokenStore;
    let storeB: TokenStore;
    let clock = Date.parse('2025-01-01T00:00:00.123Z');
    let tokens: ApiTokens;

    before(async () => {
      if (!engine.available) return;
      const database = await engine.database();
      [conA, conB] = [await database.connect(), await database.connect()];
      // Both create the table at once (replicas starting together).
      [storeA, storeB] = await Promise.all([open(conA), open(conB)]);
      tokens = createApiTokens({ store: storeA, pepper: 'pepper', now: () => clock });
    });

    const need = (t: TestContext): boolean => requireOrSkip(t, engine.available, engine.what);

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
      const rows = await conA.db.all('SELECT * FROM auth_tokens');
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
      const rows = await conA.db.all('SELECT count(*) AS n FROM auth_tokens WHERE id = $1', [a.id]);
      assert.equal(Number((rows[0] as { n: number | string }).n), 1);
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
      await conA.db.run(`UPDATE auth_tokens SET namespaces = '{"not":"a list"}' WHERE id = $1`, [info.id]);
      await assert.rejects(
        tokens.verify(token),
        (e: unknown) => e instanceof ContainmentError && e.code === 'DB_UNREADABLE',
      );
      // A role outside the known ones cannot even be written.
      await assert.rejects(
        conA.db.run(`UPDATE auth_tokens SET role = 'root' WHERE id = $1`, [info.id]),
        /check/i,
      );
    });
  });
}
