/**
 * One migration runner and one schema history for every store, on SQLite and on PostgreSQL.
 *
 * Each store (a "component": `scanner`, `events`, `tokens`, `functions`, `actions`, `vulndb`) declares its
 * migrations once, in order, with the SQL (or a step) per engine. The history table
 * `schema_migrations` records which versions of which component a database has; the runner
 * applies the missing ones in one transaction (on PostgreSQL under an advisory lock, since
 * replicas may start together) and refuses a database that has a version this build does not
 * know (written by a newer Containment). Version 1 of each component is the layout the store had
 * before the runner existed, written idempotently (`IF NOT EXISTS`, and the previous scanner
 * layout converted in place), so databases created before the history table open and convert.
 */
import type { Database } from 'better-sqlite3';
import type { Pool, PoolClient } from 'pg';
import { ContainmentError, ErrorCodes } from '../errors.js';

/**
 * SQL, a synchronous function, or `{ async }`: a step that awaits (e.g. a data conversion through
 * a store's async seam), which only `migrateSqliteAsync` runs.
 */
export type SqliteStep = string | ((db: Database) => void) | { async: (db: Database) => Promise<void> };
export type PostgresStep = string | ((client: PoolClient) => Promise<void>);

export interface Migration {
  /** 1, 2, 3, … without gaps; never renumbered once released. */
  version: number;
  /** What it does, for the history row. */
  name: string;
  /** Omitted when the component does not exist on that engine (e.g. SQLite-only stores). */
  sqlite?: SqliteStep;
  postgres?: PostgresStep;
}

/** A component's migrations, checked once at declaration. */
export interface Migrations {
  component: string;
  steps: readonly Migration[];
}

export function defineMigrations(component: string, steps: readonly Migration[]): Migrations {
  for (const [i, step] of steps.entries()) {
    if (step.version !== i + 1)
      throw new Error(`${component} migration ${step.name}: version ${step.version}, expected ${i + 1}`);
  }
  return { component, steps };
}

const HISTORY = `CREATE TABLE IF NOT EXISTS schema_migrations (
  component TEXT NOT NULL,
  version INTEGER NOT NULL,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL,
  PRIMARY KEY (component, version)
)`;

/** The steps a database with `applied` versions still needs; throws for an unknown version. */
export function pendingMigrations(migrations: Migrations, applied: readonly number[]): Migration[] {
  const known = migrations.steps.length;
  const newer = applied.filter((v) => v > known);
  if (newer.length > 0) {
    throw new ContainmentError(
      ErrorCodes.DB_UNREADABLE,
      `the database has ${migrations.component} schema version ${Math.max(...newer)}; this Containment knows up to ${known}`,
    );
  }
  const done = new Set(applied);
  return migrations.steps.filter((m) => !done.has(m.version));
}

/**
 * Inside an open transaction: creates the history, yields each missing step for the caller to
 * run and records it once it ran; returns the versions applied.
 */
function* sqliteHistory(db: Database, migrations: Migrations): Generator<SqliteStep, number[], void> {
  db.exec(HISTORY);
  const applied = db
    .prepare('SELECT version FROM schema_migrations WHERE component = ?')
    .pluck()
    .all(migrations.component) as number[];
  const record = db.prepare(
    'INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)',
  );
  const ran: number[] = [];
  for (const m of pendingMigrations(migrations, applied)) {
    if (m.sqlite === undefined) throw new Error(`${migrations.component} has no SQLite step ${m.version}`);
    yield m.sqlite;
    record.run(migrations.component, m.version, m.name, new Date().toISOString());
    ran.push(m.version);
  }
  return ran;
}

/**
 * Applies what is missing on a better-sqlite3 connection, in one IMMEDIATE transaction. For
 * components without `{ async }` steps; the others open through `migrateSqliteAsync`.
 */
export function migrateSqlite(db: Database, migrations: Migrations): number[] {
  return db
    .transaction(() => {
      const steps = sqliteHistory(db, migrations);
      for (let next = steps.next(); ; next = steps.next()) {
        if (next.done) return next.value;
        const step = next.value;
        if (typeof step === 'string') db.exec(step);
        else if (typeof step === 'function') step(db);
        else
          throw new Error(
            `${migrations.component} has an asynchronous step: open it with migrateSqliteAsync`,
          );
      }
    })
    .immediate();
}

/**
 * This process's `migrateSqliteAsync` calls, one after another: while one awaits inside its
 * transaction, another connection's BEGIN IMMEDIATE on the same file would block the thread the
 * first needs to finish (other processes simply wait for the lock, `busy_timeout`).
 */
let sqliteMigrations: Promise<unknown> = Promise.resolve();

/**
 * `migrateSqlite` for components with `{ async }` steps: the same history and the same one
 * IMMEDIATE transaction, begun and ended here so the steps can be awaited inside it. The
 * connection must not be used by anything else meanwhile (stores call it while they open).
 */
export function migrateSqliteAsync(db: Database, migrations: Migrations): Promise<number[]> {
  const run = sqliteMigrations.then(() => migrateSqliteInTransaction(db, migrations));
  sqliteMigrations = run.catch(() => {});
  return run;
}

async function migrateSqliteInTransaction(db: Database, migrations: Migrations): Promise<number[]> {
  db.exec('BEGIN IMMEDIATE');
  try {
    const steps = sqliteHistory(db, migrations);
    for (let next = steps.next(); ; next = steps.next()) {
      if (next.done) {
        db.exec('COMMIT');
        return next.value;
      }
      const step = next.value;
      if (typeof step === 'string') db.exec(step);
      else if (typeof step === 'function') step(db);
      else await step.async(db);
    }
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/**
 * Serialises schema work per schema: replicas starting together wait for each other, and stores
 * in different schemas of one database do not.
 */
const SCHEMA_LOCK = `SELECT pg_advisory_xact_lock(hashtext('containment.schema:' || coalesce(current_schema(), '')))`;

/** Applies what is missing on PostgreSQL, in one transaction under the schema lock. */
export async function migratePostgres(pool: Pool, migrations: Migrations): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(SCHEMA_LOCK);
    await client.query(HISTORY);
    const { rows } = await client.query<{ version: number }>(
      'SELECT version FROM schema_migrations WHERE component = $1',
      [migrations.component],
    );
    const ran: number[] = [];
    for (const m of pendingMigrations(
      migrations,
      rows.map((r) => r.version),
    )) {
      if (m.postgres === undefined)
        throw new Error(`${migrations.component} has no PostgreSQL step ${m.version}`);
      if (typeof m.postgres === 'string') await client.query(m.postgres);
      else await m.postgres(client);
      await client.query(
        'INSERT INTO schema_migrations (component, version, name, applied_at) VALUES ($1, $2, $3, $4)',
        [migrations.component, m.version, m.name, new Date().toISOString()],
      );
      ran.push(m.version);
    }
    await client.query('COMMIT');
    return ran;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}
