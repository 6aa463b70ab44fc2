/** The dialect seam: each helper reads the same on both engines. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type pg from 'pg';
import { requireOrSkip } from '../testing/shared-data.js';
import { testEngines } from './engines.test-helper.js';
import type { Connection } from './engines.test-helper.js';
import { epochMs, int, isoTime, postgresDb } from './sql.js';
import type { SqlDb } from './sql.js';

const { engines, cleanup } = await testEngines('sql');
after(cleanup);

for (const engine of engines) {
  describe(`dialect seam (${engine.name})`, () => {
    let con: Connection;
    let db: SqlDb;

    before(async () => {
      if (!engine.available) return;
      con = await (await engine.database()).connect();
      // The scanner store's pg statements are prepared (named) ones.
      db = con.engine === 'postgres' ? postgresDb(con.pool, { prepared: true }) : con.db;
      const id = con.engine === 'postgres' ? 'bigint' : 'INTEGER';
      const time = con.engine === 'postgres' ? 'timestamptz' : 'INTEGER';
      await db.run(`CREATE TABLE seam (id ${id} PRIMARY KEY, name TEXT NOT NULL UNIQUE, at ${time})`);
    });
    const need = (t: TestContext): boolean => requireOrSkip(t, engine.available, engine.what);

    test('insertMany keeps the order, skips conflicts and binds bigints', async (t) => {
      if (!need(t)) return;
      await db.insertMany(
        'seam',
        [
          ['id', 'bigint'],
          ['name', 'text'],
        ],
        [
          [2, 'b'],
          [1, 'a'],
          [3, 'a'],
        ],
      );
      await db.insertMany('seam', [['id', 'bigint']], []);
      const rows = await db.all<{ id: number | string; name: string }>(
        'SELECT id, name FROM seam ORDER BY id',
      );
      assert.deepEqual(
        rows.map((r) => [int(r.id), r.name]),
        [
          [1, 'a'],
          [2, 'b'],
        ],
      );
    });

    test('array parameters: inArray and elements, empty or with values', async (t) => {
      if (!need(t)) return;
      const ids = async (values: number[]): Promise<number[]> =>
        (
          await db.all<{ id: number | string }>(
            `SELECT id FROM seam WHERE ${db.inArray('id', '$1', 'bigint')} ORDER BY id`,
            [db.array(values)],
          )
        ).map((r) => int(r.id));
      assert.deepEqual(await ids([2, 9]), [2]);
      assert.deepEqual(await ids([]), []);
      const names = await db.all<{ value: string }>(
        `SELECT value FROM ${db.elements('$1', 'text')} ORDER BY value`,
        [db.array(['y', 'x'])],
      );
      assert.deepEqual(
        names.map((r) => r.value),
        ['x', 'y'],
      );
    });

    test('insertThen: the second write sees the new id; nothing more on a conflict; one query on pg', async (t) => {
      if (!need(t)) return;
      const id = con.engine === 'postgres' ? 'bigint' : 'INTEGER';
      await db.run(
        `CREATE TABLE seam_next (id ${id} PRIMARY KEY, seam_id ${id} NOT NULL, name TEXT NOT NULL)`,
      );
      // pg: count what reaches the server (every call of the seam is one query on the pool).
      let queries = 0;
      const counted = ((c: Connection): SqlDb => {
        if (c.engine !== 'postgres') return db;
        const pool = c.pool;
        const query = ((q: never) => {
          queries++;
          return pool.query(q);
        }) as never;
        return postgresDb({ query } as unknown as pg.Pool, { prepared: true });
      })(con);
      const insertThen = (rowId: number, name: string): Promise<number | undefined> =>
        counted.insertThen(
          'INSERT INTO seam (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id',
          'INSERT INTO seam_next (id, seam_id, name) SELECT $1 + 100, inserted.id, $2 FROM inserted',
          [rowId, name],
        );
      assert.equal(await insertThen(10, 'ten'), 10);
      assert.equal(await insertThen(10, 'again'), undefined);
      if (con.engine === 'postgres') assert.equal(queries, 2);
      const rows = await db.all<{ id: number | string; seam_id: number | string; name: string }>(
        'SELECT id, seam_id, name FROM seam_next ORDER BY id',
      );
      assert.deepEqual(
        rows.map((r) => [int(r.id), int(r.seam_id), r.name]),
        [[110, 10, 'ten']],
      );
    });

    test('parameters bind by number: out of order and used twice', async (t) => {
      if (!need(t)) return;
      const row = await db.get<{ a: string; b: string; c: string; d: number | string; e: string }>(
        'SELECT CAST($3 AS TEXT) AS a, CAST($1 AS TEXT) AS b, CAST($3 AS TEXT) AS c, CAST($4 AS BIGINT) + CAST($4 AS BIGINT) AS d, CAST($2 AS TEXT) AS e',
        ['one', 'two', 'three', 21],
      );
      assert.ok(row);
      assert.deepEqual([row.a, row.b, row.c, int(row.d), row.e], ['three', 'one', 'three', 42, 'two']);
      // A boolean is stored as SQLite's 0/1, pg's boolean.
      const flag = await db.get<{ f: number | boolean }>('SELECT CAST($1 AS BOOLEAN) AS f', [true]);
      assert.ok(flag?.f === true || flag?.f === 1);
    });

    test('times round-trip as epoch ms and RFC 3339; locking is a clause only on pg', async (t) => {
      if (!need(t)) return;
      const at = new Date('2025-03-04T05:06:07.089Z');
      assert.equal(await db.run('UPDATE seam SET at = $1 WHERE id = $2', [at, 1]), 1);
      const row = await db.get<{ at: number | Date }>(
        `SELECT at FROM seam WHERE id = $1${db.locking('FOR UPDATE')}`,
        [1],
      );
      assert.ok(row);
      assert.equal(epochMs(row.at), at.getTime());
      assert.equal(isoTime(row.at), at.toISOString());
      assert.equal(db.locking('FOR UPDATE'), engine.name === 'postgres' ? ' FOR UPDATE' : '');
    });
  });
}
