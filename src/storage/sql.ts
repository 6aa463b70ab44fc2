/**
 * The dialect seam: one statement text for both engines. Statements take PostgreSQL's numbered
 * parameters `$1…$n`; on SQLite each becomes an anonymous `?` when the statement is prepared
 * (`positional` below), bound from the same array. What still differs is declared by the caller
 * beside its SQL: column types (SQLite TEXT/INTEGER vs jsonb/bigint/timestamptz), and row values
 * (`Number()` for pg's bigint strings, `JSON.parse` for SQLite's JSON text) are read through
 * `int` below and `SqlDb.json`.
 *
 * The SQLite side runs synchronously under the promise (better-sqlite3), with each statement
 * prepared once per connection; the PostgreSQL side sends one query per call on the pool.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { Pool, PoolClient } from 'pg';

export type Engine = 'sqlite' | 'postgres';

export interface SqlDb {
  readonly engine: Engine;
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** Runs a write; the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /** A JSON column's value: text to parse on SQLite, already parsed from pg's json/jsonb. */
  json<T>(value: unknown): T;
  /**
   * `expr` is one of the values of the array parameter `param`, bound with `array()`: SQLite reads
   * the array as JSON through `json_each`, pg as a `type[]` (its index plans stay as they were).
   */
  inArray(expr: string, param: string, type: 'text' | 'bigint'): string;
  /** An array parameter's value for `inArray` and `elements`. */
  array(values: readonly unknown[]): unknown;
  /** A FROM item: the values of the array parameter `param` (bound with `array()`), column `value`. */
  elements(param: string, type: 'text' | 'bigint'): string;

  /**
   * Inserts rows in their order, `ON CONFLICT DO NOTHING`: one prepared statement per row on
   * SQLite (in-process: nothing to batch, and no JSON to build), one statement over arrays on pg
   * (one round trip). Values are bound as `columns` declares their pg types.
   */
  insertMany(
    table: string,
    columns: readonly (readonly [name: string, type: 'text' | 'bigint'])[],
    rows: readonly (readonly unknown[])[],
  ): Promise<void>;
  /**
   * Runs `insert` (an `INSERT … RETURNING id`) and, when it inserted a row, `then`: a write that
   * reads the new id from the FROM item `inserted` (e.g. `UPDATE t SET x = inserted.id FROM
   * inserted WHERE t.id = $1`); both take `params`. One statement on pg (a data-modifying WITH: one
   * round trip, where the id goes from the first write to the second inside the server); two
   * in-process statements on SQLite, which allows no write inside WITH. The new id, or undefined
   * when nothing was inserted (`ON CONFLICT DO NOTHING`; `then` does not run).
   */
  insertThen(insert: string, then: string, params: readonly unknown[]): Promise<number | undefined>;
  /**
   * A row-lock clause (`FOR UPDATE OF w`) on PostgreSQL, where replicas write concurrently; nothing
   * on SQLite, whose one writer holds the database lock for the whole transaction.
   */
  locking(clause: string): string;
}

/** A value as SQLite stores it: booleans as 0/1, times as epoch milliseconds. */
function sqliteValue(value: unknown): unknown {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value instanceof Date ? value.getTime() : value;
}

/** A statement prepared with anonymous `?`s, and which `$n` parameter each one takes. */
interface Prepared {
  statement: Statement;
  order: number[];
}

/**
 * Each `$n` parameter becomes SQLite's anonymous `?`, bound from an array in the order they appear
 * (a `$n` used twice takes two). better-sqlite3 binds those ~3 µs a statement cheaper than named
 * ones from an object (a ten-column insert: 5.7 against 8.7 µs), and a report or re-match runs a
 * dozen statements or more. The statements here hold no `$` followed by a digit in a string
 * literal.
 */
function positional(sql: string): { text: string; order: number[] } {
  const order: number[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    order.push(Number(n) - 1);
    return '?';
  });
  return { text, order };
}

export function sqliteDb(db: Database): SqlDb {
  const statements = new Map<string, Prepared>();
  const stmt = (sql: string): Prepared => {
    let prepared = statements.get(sql);
    if (!prepared) {
      const { text, order } = positional(sql);
      prepared = { statement: db.prepare(text), order };
      statements.set(sql, prepared);
    }
    return prepared;
  };
  const bind = ({ order }: Prepared, params: readonly unknown[]): unknown[] =>
    order.map((i) => sqliteValue(params[i]));
  return {
    engine: 'sqlite',
    async all<T>(sql: string, params: readonly unknown[] = []) {
      const prepared = stmt(sql);
      return prepared.statement.all(...bind(prepared, params)) as T[];
    },
    async get<T>(sql: string, params: readonly unknown[] = []) {
      const prepared = stmt(sql);
      return prepared.statement.get(...bind(prepared, params)) as T | undefined;
    },
    async run(sql, params = []) {
      const prepared = stmt(sql);
      return prepared.statement.run(...bind(prepared, params)).changes;
    },
    json: <T>(value: unknown) => JSON.parse(value as string) as T,
    async insertMany(table, columns, rows) {
      const marks = columns.map((_, i) => `$${i + 1}`).join(', ');
      const insert = stmt(
        `INSERT INTO ${table} (${columns.map(([name]) => name).join(', ')}) VALUES (${marks}) ON CONFLICT DO NOTHING`,
      );
      for (const row of rows) insert.statement.run(...bind(insert, row));
    },
    async insertThen(insert, then, params) {
      const first = stmt(insert);
      const row = first.statement.get(...bind(first, params)) as { id: number | string } | undefined;
      if (row === undefined) return undefined;
      const id = int(row.id);
      // The new id as a one-row table, bound after the caller's parameters.
      const second = stmt(`WITH inserted(id) AS (VALUES ($${params.length + 1})) ${then}`);
      second.statement.run(...bind(second, [...params, id]));
      return id;
    },
    inArray: (expr, param) => `${expr} IN (SELECT value FROM json_each(${param}))`,
    array: (values) => JSON.stringify(values),
    elements: (param) => `json_each(${param})`,
    locking: () => '',
  };
}

/**
 * pg prepares a statement once per connection when it has a name: one per distinct text, the same
 * on every connection of the process. A prepared statement must not select `*`: a column added by
 * a newer replica's migration would change its result type ("cached plan must not change").
 */
const statementNames = new Map<string, string>();
function preparedOnce(
  text: string,
  values: readonly unknown[],
): { name: string; text: string; values: unknown[] } {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `containment-${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return { name, text, values: values as unknown[] };
}

export function postgresDb(pool: Pool | PoolClient, options: { prepared?: boolean } = {}): SqlDb {
  const statement = options.prepared
    ? preparedOnce
    : (text: string, values: readonly unknown[]) => ({ text, values: values as unknown[] });
  return {
    engine: 'postgres',
    async all<T>(sql: string, params: readonly unknown[] = []) {
      return (await pool.query(statement(sql, params))).rows as T[];
    },
    async get<T>(sql: string, params: readonly unknown[] = []) {
      return (await pool.query(statement(sql, params))).rows[0] as T | undefined;
    },
    async run(sql, params = []) {
      return (await pool.query(statement(sql, params))).rowCount ?? 0;
    },
    json: <T>(value: unknown) => value as T,
    async insertMany(table, columns, rows) {
      if (rows.length === 0) return;
      const names = columns.map(([name]) => name).join(', ');
      const arrays = columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ');
      await pool.query(
        statement(
          `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${arrays}) ON CONFLICT DO NOTHING`,
          columns.map((_, i) => rows.map((row) => row[i])),
        ),
      );
    },
    async insertThen(insert, then, params) {
      const { rows } = await pool.query(
        statement(`WITH inserted AS (${insert}), then_ AS (${then}) SELECT id FROM inserted`, params),
      );
      const row = rows[0] as { id: number | string } | undefined;
      return row === undefined ? undefined : int(row.id);
    },
    inArray: (expr, param, type) => `${expr} = ANY(${param}::${type}[])`,
    array: (values) => [...values],
    elements: (param, type) => `unnest(${param}::${type}[]) AS value`,
    locking: (clause) => ` ${clause}`,
  };
}

/** An integer column: a number on SQLite, a string for pg's bigint (exact; ids stay below 2^53). */
export function int(value: number | string): number {
  return typeof value === 'number' ? value : Number(value);
}

/** A time column as epoch milliseconds: a number on SQLite, a `Date` from pg's timestamptz. */
export function epochMs(value: number | string | Date): number {
  return value instanceof Date ? value.getTime() : int(value);
}

/** A time column as RFC 3339: epoch milliseconds on SQLite, a `Date` from pg's timestamptz. */
export function isoTime(value: number | string | Date): string {
  return (value instanceof Date ? value : new Date(int(value))).toISOString();
}
