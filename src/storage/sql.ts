/**
 * The dialect seam: one statement text for both engines. Statements use PostgreSQL's `$1…$n`
 * placeholders, which SQLite also reads (as parameters named "1", "2", … — bound here from the
 * positional array). What still differs is declared by the caller beside its SQL: column types
 * (SQLite TEXT/INTEGER vs jsonb/bigint/timestamptz), and row values (`Number()` for pg's bigint
 * strings, `JSON.parse` for SQLite's JSON text) are read through `int` below and `SqlDb.json`.
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
}

/** `$n` parameters as better-sqlite3 binds named ones: `{ 1: …, 2: … }`. */
function named(params: readonly unknown[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const [i, value] of params.entries())
    out[i + 1] =
      typeof value === 'boolean' ? (value ? 1 : 0) : value instanceof Date ? value.getTime() : value;
  return out;
}

export function sqliteDb(db: Database): SqlDb {
  const statements = new Map<string, Statement>();
  const stmt = (sql: string): Statement => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  return {
    engine: 'sqlite',
    async all<T>(sql: string, params: readonly unknown[] = []) {
      return stmt(sql).all(named(params)) as T[];
    },
    async get<T>(sql: string, params: readonly unknown[] = []) {
      return stmt(sql).get(named(params)) as T | undefined;
    },
    async run(sql, params = []) {
      return stmt(sql).run(named(params)).changes;
    },
    json: <T>(value: unknown) => JSON.parse(value as string) as T,
  };
}

export function postgresDb(pool: Pool | PoolClient): SqlDb {
  return {
    engine: 'postgres',
    async all<T>(sql: string, params: readonly unknown[] = []) {
      return (await pool.query(sql, params as unknown[])).rows as T[];
    },
    async get<T>(sql: string, params: readonly unknown[] = []) {
      return (await pool.query(sql, params as unknown[])).rows[0] as T | undefined;
    },
    async run(sql, params = []) {
      return (await pool.query(sql, params as unknown[])).rowCount ?? 0;
    },
    json: <T>(value: unknown) => value as T,
  };
}

/** An integer column: a number on SQLite, a string for pg's bigint (exact; ids stay below 2^53). */
export function int(value: number | string): number {
  return typeof value === 'number' ? value : Number(value);
}

/** A time column as RFC 3339: epoch milliseconds on SQLite, a `Date` from pg's timestamptz. */
export function isoTime(value: number | string | Date): string {
  return (value instanceof Date ? value : new Date(int(value))).toISOString();
}
