/**
 * SQLite implementation of AdvisoryStore (better-sqlite3, WAL). Records are stored as compact
 * JSON with a content hash; an index table maps (normalised name, ecosystem) to records so a
 * lookup is one probe of a covering primary key. Withdrawn records are kept but never indexed.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type {
  AdvisoryCounts,
  AdvisoryStore,
  ImportItem,
  ImportOptions,
  ImportReport,
  ImportSummary,
  PackageQuery,
  SharedMatch,
} from './advisory-store.js';
import { oneLine } from './import-tally.js';
import type { OsvRecord } from './osv.js';
import { candidateEcosystems, normalizePackageName } from './package-key.js';
import { affectedKeys, runImport } from './import-run.js';
import type { EncodedRecord, ImportTarget } from './import-run.js';
import {
  ADVISORY_LAYOUT,
  ADVISORY_MIGRATIONS,
  SQLITE_ADVISORY_INDEXES,
} from '../storage/advisories/migrations.js';
import { migrateSqlite, pendingMigrations } from '../storage/migrations.js';

/** The layout marker in `meta` (what earlier releases check); migrations are in the schema history. */
export const SCHEMA_VERSION = ADVISORY_LAYOUT;

export interface OpenStoreOptions {
  /** Create the file (and its directory) and the schema if missing. For imports. */
  create?: boolean;
  /** Open read-only (e.g. a database shipped in a read-only location). */
  readonly?: boolean;
}

export function openSqliteAdvisoryStore(path: string, options: OpenStoreOptions = {}): AdvisoryStore {
  const create = options.create === true && options.readonly !== true;
  if (!create && !existsSync(path)) {
    throw new ContainmentError(
      ErrorCodes.DB_UNREADABLE,
      `no vulnerability database at ${path}; run \`containment db update\` or \`containment db import <path>\` first`,
    );
  }
  let db: Database.Database | undefined;
  try {
    if (create) mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { readonly: options.readonly === true, fileMustExist: !create });
    // The first statement is where SQLite notices a file is not a database.
    if (options.readonly !== true) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
    prepareSchema(db, path, create, options.readonly === true);
    return new SqliteAdvisoryStore(db, options.readonly === true);
  } catch (e) {
    db?.close();
    if (e instanceof ContainmentError) throw e;
    const code = (e as { code?: unknown }).code;
    const detail =
      code === 'SQLITE_NOTADB' ? 'not a SQLite database' : oneLine((e as Error).message ?? String(e));
    throw new ContainmentError(
      ErrorCodes.DB_UNREADABLE,
      `cannot open vulnerability database ${path}: ${detail}`,
      {
        cause: e,
      },
    );
  }
}

function prepareSchema(db: Database.Database, path: string, create: boolean, readonly: boolean): void {
  const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
  if (tables.length === 0 && !create) {
    throw new ContainmentError(
      ErrorCodes.DB_UNREADABLE,
      `${path} holds no advisories; run \`containment db update\` or \`containment db import <path>\` first`,
    );
  }
  if (tables.length > 0) {
    if (!tables.includes('meta')) {
      throw new ContainmentError(
        ErrorCodes.DB_UNREADABLE,
        `${path} is a SQLite database but not a Containment vulnerability database`,
      );
    }
    const version = db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).pluck().get();
    if (version !== SCHEMA_VERSION) {
      throw new ContainmentError(
        ErrorCodes.DB_UNREADABLE,
        `${path} has vulnerability database schema version ${String(version ?? 'none')}; this Containment reads version ${SCHEMA_VERSION}`,
      );
    }
  }
  if (!readonly) {
    migrateSqlite(db, ADVISORY_MIGRATIONS);
    return;
  }
  // Read-only: nothing can be applied; every released version is readable, a newer one is refused.
  if (tables.includes('schema_migrations')) {
    const applied = db
      .prepare(`SELECT version FROM schema_migrations WHERE component = ?`)
      .pluck()
      .all(ADVISORY_MIGRATIONS.component) as number[];
    pendingMigrations(ADVISORY_MIGRATIONS, applied);
  }
}

/**
 * Records for (name, exact, base, release, name, rangeFrom, rangeTo); see `candidateEcosystems`.
 * Two branches so each is a primary-key search on (name, ecosystem): with an OR, SQLite would
 * search on the name alone. Exported for the query-plan test.
 */
export const LOOKUP_SQL = `SELECT rid, json FROM records
  WHERE rid IN (SELECT rid FROM affected WHERE name = ? AND ecosystem IN (?, ?, ?)
                UNION ALL
                SELECT rid FROM affected WHERE name = ? AND ecosystem >= ? AND ecosystem < ?)
  ORDER BY id`;

function storedHashes(select: Database.Statement, ids: readonly string[]): Map<string, Buffer> {
  const found = new Map<string, Buffer>();
  for (const id of ids) {
    const hash = select.get(id) as Buffer | undefined;
    if (hash !== undefined) found.set(id, hash);
  }
  return found;
}

/** Whether the journal mode is now `mode`; SQLITE_BUSY (another connection open) leaves it. */
function switchJournal(db: Database.Database, mode: 'delete' | 'wal'): boolean {
  try {
    return db.pragma(`journal_mode = ${mode}`, { simple: true }) === mode;
  } catch (e) {
    if ((e as { code?: unknown }).code === 'SQLITE_BUSY') return false;
    throw e;
  }
}

/**
 * A batch's entries of the shared match cache: CROSS JOIN keeps the keys as the outer loop, each
 * an index search; with a plain JOIN SQLite reads every entry of the generation and scans the
 * keys for each (20–30× slower at 200 keys). Exported for the query-plan test.
 */
export const SHARED_READ_SQL = `SELECT m.key, m.value FROM json_each(?) j
  CROSS JOIN match_cache m ON m.generation = ? AND m.key = j.value`;

/** Page cache during an import (KiB, as a negative `cache_size`); better-sqlite3 defaults to 16 MB. */
const IMPORT_CACHE_KIB = -64 * 1024;

class SqliteAdvisoryStore implements AdvisoryStore {
  /** Imports run one after another: each holds the connection's single write transaction. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly stmt;

  /** Prepared when the match cache can be shared (not read-only: the table may be missing). */
  private readonly shared;
  /** The connection's busy timeout, restored after a match cache write (which waits for none). */
  private readonly busyTimeoutMs: number;

  constructor(
    private readonly db: Database.Database,
    readonly: boolean,
  ) {
    const p = (sql: string) => db.prepare(sql);
    this.busyTimeoutMs = db.pragma('busy_timeout', { simple: true }) as number;
    this.shared = readonly
      ? undefined
      : {
          read: p(SHARED_READ_SQL),
          write: p(`INSERT OR IGNORE INTO match_cache (generation, key, value)
                    SELECT ?, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]') FROM json_each(?) j`),
        };
    this.stmt = {
      lookup: p(LOOKUP_SQL),
      get: p(`SELECT json FROM records WHERE id = ?`).pluck(),
      count: p(`SELECT count(*) AS records, count(withdrawn) AS withdrawn FROM records`),
      changedSince: p(`SELECT id FROM records WHERE import_id > ? ORDER BY id`).pluck(),
      lastImport: p(`SELECT id, source, started_at, finished_at FROM imports ORDER BY id DESC LIMIT 1`),
    };
  }

  importRecords(
    items: AsyncIterable<ImportItem> | Iterable<ImportItem>,
    options: ImportOptions = {},
  ): Promise<ImportReport> {
    const run = this.queue.then(() => this.runImport(items, options));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async runImport(
    items: AsyncIterable<ImportItem> | Iterable<ImportItem>,
    options: ImportOptions,
  ): Promise<ImportReport> {
    const { db } = this;
    // Into an empty database, a rollback journal writes each new page once (pages past the old
    // end of file need no journal), where WAL writes it twice (log, then checkpoint). Switching
    // needs the only connection; with another open it stays WAL, only slower.
    const rollbackJournal =
      db.prepare(`SELECT 1 FROM records LIMIT 1`).get() === undefined && switchJournal(db, 'delete');
    // One transaction for the whole import, held across the source's awaits: a failure (or a
    // crash) leaves the previous state intact, and other connections never see half an import.
    db.exec('BEGIN IMMEDIATE');
    const cacheSize = db.pragma('cache_size', { simple: true }) as number;
    try {
      // The indexes of a large import do not fit the default page cache.
      db.pragma(`cache_size = ${IMPORT_CACHE_KIB}`);
      const importId = Number(
        db
          .prepare(`INSERT INTO imports (source, started_at) VALUES (?, ?)`)
          .run(options.source ?? null, new Date().toISOString()).lastInsertRowid,
      );
      const empty = db.prepare(`SELECT 1 FROM records LIMIT 1`).get() === undefined;
      const target = empty ? this.bulkTarget(importId) : this.updateTarget(importId);
      const report = await runImport(items, options, importId, target);
      target.finish?.();
      // The shared match cache's older generations: never read again once this one commits.
      db.prepare(`DELETE FROM match_cache WHERE generation < ?`).run(importId);
      db.prepare(`UPDATE imports SET finished_at = ? WHERE id = ?`).run(new Date().toISOString(), importId);
      db.exec('COMMIT');
      return report;
    } catch (e) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw e;
    } finally {
      db.pragma(`cache_size = ${cacheSize}`);
      if (rollbackJournal) switchJournal(db, 'wal');
    }
  }

  /**
   * Into an empty database: nothing to replace in the package index, the secondary indexes are dropped and
   * rebuilt once at the end, and index rows are staged and written in key order, so every B-tree
   * is built by appending rather than by random inserts. All inside the import's transaction.
   */
  private bulkTarget(importId: number): ImportTarget & { finish(): void } {
    const { db } = this;
    for (const name of ['records_import_id', 'affected_rid']) db.exec(`DROP INDEX IF EXISTS ${name}`);
    db.exec(
      `CREATE TEMP TABLE affected_staging (name TEXT NOT NULL, ecosystem TEXT NOT NULL, rid INTEGER NOT NULL)`,
    );
    const insertRecord = db.prepare(
      `INSERT INTO records (id, modified, withdrawn, hash, json, import_id) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    const updateRecord = db
      .prepare(
        `UPDATE records SET modified = ?, withdrawn = ?, hash = ?, json = ?, import_id = ? WHERE id = ? RETURNING rid`,
      )
      .pluck();
    // Rare (a record changed within the import): a scan of the staged rows.
    const unstage = db.prepare(`DELETE FROM temp.affected_staging WHERE rid = ?`);
    const stage = db.prepare(`INSERT INTO temp.affected_staging (name, ecosystem, rid) VALUES (?, ?, ?)`);
    const selectHash = db.prepare(`SELECT hash FROM records WHERE id = ?`).pluck();
    return {
      storedHashes: (ids) => storedHashes(selectHash, ids),
      write: (writes) => {
        for (const { record, json, hash, replaces } of writes) {
          const withdrawn = record.withdrawn ?? null;
          let rid: number | bigint;
          if (replaces === true) {
            rid = updateRecord.get(record.modified, withdrawn, hash, json, importId, record.id) as number;
            unstage.run(rid);
          } else {
            rid = insertRecord.run(
              record.id,
              record.modified,
              withdrawn,
              hash,
              json,
              importId,
            ).lastInsertRowid;
          }
          for (const [name, ecosystem] of affectedKeys(record)) stage.run(name, ecosystem, rid);
        }
      },
      finish: () => {
        db.exec(`INSERT OR IGNORE INTO affected (name, ecosystem, rid)
                 SELECT name, ecosystem, rid FROM temp.affected_staging ORDER BY name, ecosystem, rid`);
        db.exec(`DROP TABLE temp.affected_staging`);
        for (const sql of SQLITE_ADVISORY_INDEXES) db.exec(sql);
      },
    };
  }

  /** Into a database with records: each batch's stored hashes in one pass, upserts by id. */
  private updateTarget(importId: number): ImportTarget & { finish?(): void } {
    const { db } = this;
    const selectHash = db.prepare(`SELECT hash FROM records WHERE id = ?`).pluck();
    const upsert = db
      .prepare(
        `INSERT INTO records (id, modified, withdrawn, hash, json, import_id) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, withdrawn = excluded.withdrawn,
           hash = excluded.hash, json = excluded.json, import_id = excluded.import_id
         RETURNING rid`,
      )
      .pluck();
    const deleteAffected = db.prepare(`DELETE FROM affected WHERE rid = ?`);
    const insertAffected = db.prepare(
      `INSERT OR IGNORE INTO affected (name, ecosystem, rid) VALUES (?, ?, ?)`,
    );
    return {
      storedHashes: (ids) => storedHashes(selectHash, ids),
      write: (writes: readonly EncodedRecord[]) => {
        for (const { record, json, hash } of writes) {
          const rid = upsert.get(record.id, record.modified, record.withdrawn ?? null, hash, json, importId);
          deleteAffected.run(rid);
          for (const [name, ecosystem] of affectedKeys(record)) insertAffected.run(name, ecosystem, rid);
        }
      },
    };
  }

  lookup(ecosystem: string, name: string): OsvRecord[] {
    return this.lookupMany([{ ecosystem, name }])[0] ?? [];
  }

  lookupMany(queries: readonly PackageQuery[]): OsvRecord[][] {
    // Records shared by several queries are parsed once per call.
    const parsed = new Map<number, OsvRecord>();
    return queries.map(({ ecosystem, name }) => {
      const c = candidateEcosystems(ecosystem);
      const key = normalizePackageName(ecosystem, name);
      const rows = this.stmt.lookup.all(key, c.exact, c.base, c.release, key, c.rangeFrom, c.rangeTo) as {
        rid: number;
        json: string;
      }[];
      return rows.map((row) => {
        let record = parsed.get(row.rid);
        if (record === undefined) {
          record = JSON.parse(row.json) as OsvRecord;
          parsed.set(row.rid, record);
        }
        return record;
      });
    });
  }

  get(id: string): OsvRecord | undefined {
    const json = this.stmt.get.get(id) as string | undefined;
    return json === undefined ? undefined : (JSON.parse(json) as OsvRecord);
  }

  count(): AdvisoryCounts {
    return this.stmt.count.get() as AdvisoryCounts;
  }

  changedSince(importId: number): string[] {
    return this.stmt.changedSince.all(importId) as string[];
  }

  lastImport(): ImportSummary | undefined {
    const row = this.stmt.lastImport.get() as
      { id: number; source: string | null; started_at: string; finished_at: string } | undefined;
    if (row === undefined) return undefined;
    return {
      importId: row.id,
      source: row.source ?? undefined,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
    };
  }

  sharedMatches(generation: number, keys: readonly string[]): Map<string, string> {
    if (this.shared === undefined || keys.length === 0) return new Map();
    const rows = this.shared.read.all(JSON.stringify(keys), generation) as SharedMatch[];
    return new Map(rows.map((row) => [row.key, row.value]));
  }

  storeMatches(generation: number, entries: readonly SharedMatch[]): void {
    // Inside this connection's import the entries would commit with it; and an import elsewhere
    // holds the write lock for its whole length (the entries would be stale when it commits), so
    // a busy database skips the write rather than stall the event loop on the lock.
    if (this.shared === undefined || entries.length === 0 || this.db.inTransaction) return;
    this.db.pragma('busy_timeout = 0');
    try {
      this.shared.write.run(generation, JSON.stringify(entries.map((e) => [e.key, e.value])));
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'SQLITE_BUSY') throw e;
    } finally {
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    }
  }

  close(): void {
    this.db.close();
  }
}
