/**
 * Opening a SQLite database the way every store uses it: WAL (readers never wait for the
 * writer), NORMAL sync (durable at checkpoints, safe with WAL), foreign keys on, and a busy
 * timeout so a second process (the CLI next to a server) waits instead of failing at once.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';

export interface SqliteOptions {
  /** `synchronous = NORMAL` (default) or leave SQLite's FULL. */
  normalSync?: boolean;
  /** Enforce REFERENCES (default true). */
  foreignKeys?: boolean;
}

/** Applies the shared settings to an open connection. */
export function configureSqlite(db: Db, options: SqliteOptions = {}): Db {
  db.pragma('journal_mode = WAL');
  if (options.normalSync ?? true) db.pragma('synchronous = NORMAL');
  if (options.foreignKeys ?? true) db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Opens (creating it and its directory if needed) the database at `path`. */
export function openSqlite(path: string, options: SqliteOptions = {}): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  return configureSqlite(new Database(path), options);
}
