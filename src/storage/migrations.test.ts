import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Database } from 'better-sqlite3';
import { isContainmentError } from '../errors.js';
import { PostgresScannerStore } from './scanner/postgres-scanner-store.js';
import type { ScannerStore } from '../scanner/scanner-store.js';
import { SqliteScannerStore } from './scanner/sqlite-scanner-store.js';
import { requireOrSkip } from '../testing/shared-data.js';
import { testEngines } from './engines.test-helper.js';
import type { Connection } from './engines.test-helper.js';
import { defineMigrations, migratePostgres, migrateSqlite, migrateSqliteAsync } from './migrations.js';
import type { Migration, Migrations } from './migrations.js';

const { engines, cleanup } = await testEngines('migrations');
after(cleanup);

async function migrate(c: Connection, m: Migrations): Promise<number[]> {
  return c.engine === 'sqlite' ? migrateSqlite(c.sqlite, m) : await migratePostgres(c.pool, m);
}

const table = (name: string, column = 'id'): string => `CREATE TABLE ${name} (${column} INTEGER PRIMARY KEY)`;
const both = (version: number, name: string, sql: string): Migration => ({
  version,
  name,
  sqlite: sql,
  postgres: sql,
});

async function history(c: Connection, component: string): Promise<number[]> {
  if (!(await tableExists(c, 'schema_migrations'))) return [];
  const rows = await c.db.all<{ version: number }>(
    'SELECT version FROM schema_migrations WHERE component = $1 ORDER BY version',
    [component],
  );
  return rows.map((r) => Number(r.version));
}

async function tableExists(c: Connection, name: string): Promise<boolean> {
  const sql =
    c.engine === 'sqlite'
      ? "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = $1"
      : 'SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1';
  const row = await c.db.get<{ n: number | string }>(sql, [name]);
  return Number(row?.n) === 1;
}

for (const engine of engines) {
  describe(`migration runner (${engine.name})`, () => {
    const need = (t: TestContext): boolean => requireOrSkip(t, engine.available, engine.what);

    test('applies what is missing, once, and records it per component', async (t) => {
      if (!need(t)) return;
      const c = await (await engine.database()).connect();
      const v1 = defineMigrations('alpha', [both(1, 'a1', table('alpha_one'))]);
      assert.deepEqual(await migrate(c, v1), [1]);
      assert.deepEqual(await migrate(c, v1), []);
      const v2 = defineMigrations('alpha', [...v1.steps, both(2, 'a2', table('alpha_two'))]);
      assert.deepEqual(await migrate(c, v2), [2]);
      assert.deepEqual(await history(c, 'alpha'), [1, 2]);
      // Another component keeps its own versions in the same history.
      assert.deepEqual(await migrate(c, defineMigrations('beta', [both(1, 'b1', table('beta_one'))])), [1]);
      assert.deepEqual(await history(c, 'beta'), [1]);
    });

    test('a failing step leaves nothing behind: no table, no history', async (t) => {
      if (!need(t)) return;
      const c = await (await engine.database()).connect();
      const broken = defineMigrations('gamma', [
        both(1, 'g1', table('gamma_one')),
        both(2, 'g2', 'CREATE TABLE gamma_two (id INTEGER PRIMARY KEY, nonsense NOSUCHTYPE('),
      ]);
      await assert.rejects(migrate(c, broken));
      assert.equal(await tableExists(c, 'gamma_one'), false);
      assert.deepEqual(await history(c, 'gamma'), []);
    });

    test('a database from a newer Containment is refused, not touched', async (t) => {
      if (!need(t)) return;
      const c = await (await engine.database()).connect();
      const newer = defineMigrations('delta', [
        both(1, 'd1', table('delta_one')),
        both(2, 'd2', table('delta_two')),
      ]);
      await migrate(c, newer);
      const older = defineMigrations(
        'delta',
        [both(1, 'd1', table('delta_one')), both(2, 'd2', table('delta_two'))].slice(0, 1),
      );
      await assert.rejects(
        migrate(c, older),
        (e: unknown) => isContainmentError(e) && e.code === 'DB_UNREADABLE',
      );
      assert.deepEqual(await history(c, 'delta'), [1, 2]);
    });

    test('versions must be 1, 2, 3 … at declaration', () => {
      assert.throws(() => defineMigrations('x', [both(2, 'x', table('x'))]), /expected 1/);
    });

    test('processes (replicas) migrating at once apply each step once', async (t) => {
      if (!need(t)) return;
      const database = await engine.database();
      const [a, b] = [await database.connect(), await database.connect()];
      const m = defineMigrations('epsilon', [
        both(1, 'e1', table('epsilon_one')),
        both(2, 'e2', table('epsilon_two')),
      ]);
      const ran = await Promise.all([migrate(a, m), migrate(b, m)]);
      assert.deepEqual(ran.flat().sort(), [1, 2]);
      assert.deepEqual(await history(a, 'epsilon'), [1, 2]);
    });

    test("a scanner database of today's layout (no history yet) opens, keeps its data and is recorded", async (t) => {
      if (!need(t)) return;
      const database = await engine.database();
      const open = async (): Promise<{ store: ScannerStore; c: Connection }> => {
        const c = await database.connect();
        const store =
          c.engine === 'sqlite'
            ? await SqliteScannerStore.open(c.sqlite)
            : await PostgresScannerStore.open(c.pool);
        return { store, c };
      };
      const first = await open();
      await first.store.createCluster('prod');
      // What a database written before the runner looks like: the same tables, no history.
      await first.c.db.run('DROP TABLE schema_migrations');
      await first.store.close();
      const again = await open();
      assert.equal((await again.store.getCluster('prod'))?.name, 'prod');
      assert.deepEqual(await history(again.c, 'scanner'), [1, 2, 3]);
      assert.deepEqual(await history(again.c, 'events'), [1]);
      await again.store.close();
    });
  });
}

describe('migration runner (sqlite): awaited steps', () => {
  const sqliteEngine = engines.find((e) => e.name === 'sqlite') as (typeof engines)[number];
  const connect = async (database?: Awaited<ReturnType<typeof sqliteEngine.database>>) => {
    const c = await (database ?? (await sqliteEngine.database())).connect();
    assert.equal(c.engine, 'sqlite');
    return c as Extract<Connection, { engine: 'sqlite' }>;
  };
  const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const awaited = (version: number, name: string, run: (db: Database) => Promise<void>): Migration => ({
    version,
    name,
    sqlite: { async: run },
  });

  test('an { async } step is awaited inside the transaction; failing after an await leaves nothing', async () => {
    const c = await connect();
    const ok = defineMigrations('zeta', [
      both(1, 'z1', table('zeta_one')),
      awaited(2, 'z2', async (db) => {
        db.exec(table('zeta_two'));
        await nextTurn();
        db.exec('INSERT INTO zeta_two (id) VALUES (7)');
      }),
    ]);
    assert.deepEqual(await migrateSqliteAsync(c.sqlite, ok), [1, 2]);
    assert.deepEqual(await c.db.all('SELECT id FROM zeta_two'), [{ id: 7 }]);
    assert.deepEqual(await migrateSqliteAsync(c.sqlite, ok), []);

    const broken = defineMigrations('eta', [
      both(1, 'e1', table('eta_one')),
      awaited(2, 'e2', async (db) => {
        db.exec(table('eta_two'));
        await nextTurn();
        throw new Error('conversion failed');
      }),
    ]);
    await assert.rejects(migrateSqliteAsync(c.sqlite, broken), /conversion failed/);
    assert.equal(c.sqlite.inTransaction, false);
    assert.equal(await tableExists(c, 'eta_one'), false);
    assert.equal(await tableExists(c, 'eta_two'), false);
    assert.deepEqual(await history(c, 'eta'), []);
  });

  test('migrateSqlite refuses an { async } step without running it', async () => {
    const c = await connect();
    let ran = false;
    const m = defineMigrations('theta', [
      both(1, 't1', table('theta_one')),
      awaited(2, 't2', async () => {
        ran = true;
      }),
    ]);
    assert.throws(() => migrateSqlite(c.sqlite, m), /migrateSqliteAsync/);
    assert.equal(ran, false);
    assert.equal(await tableExists(c, 'theta_one'), false);
  });

  test('two connections of one process migrating one file at once both finish, each step once', async () => {
    const database = await sqliteEngine.database();
    const [a, b] = [await connect(database), await connect(database)];
    const m = defineMigrations('iota', [
      both(1, 'i1', table('iota_one')),
      awaited(2, 'i2', async (db) => {
        await nextTurn();
        db.exec(table('iota_two'));
      }),
    ]);
    // Without the runner's queue, b's BEGIN IMMEDIATE would block the thread a needs (SQLITE_BUSY).
    const ran = await Promise.all([migrateSqliteAsync(a.sqlite, m), migrateSqliteAsync(b.sqlite, m)]);
    assert.deepEqual(ran.flat().sort(), [1, 2]);
    assert.deepEqual(await history(a, 'iota'), [1, 2]);
  });
});
