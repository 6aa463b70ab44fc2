/**
 * SQLite implementation of AdvisoryStore (better-sqlite3, WAL). Records are stored as compact
 * JSON with a content hash; an index table maps (normalised name, ecosystem) to records so a
 * lookup is one probe of a covering primary key. Withdrawn records are kept but never indexed.
 */
import { createHash } from 'node:crypto';
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
} from './advisory-store.js';
import { ImportTally, oneLine } from './import-tally.js';
import type { WriteOutcome } from './import-tally.js';
import type { OsvRecord } from './osv.js';
import { candidateEcosystems, normalizePackageName } from './package-key.js';

export const SCHEMA_VERSION = '1';

const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE imports (
  id INTEGER PRIMARY KEY,
  source TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT
);
CREATE TABLE records (
  rid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  modified TEXT NOT NULL,
  withdrawn TEXT,
  hash BLOB NOT NULL,
  json TEXT NOT NULL,
  import_id INTEGER NOT NULL
);
CREATE INDEX records_import_id ON records (import_id);
CREATE TABLE affected (
  name TEXT NOT NULL,
  ecosystem TEXT NOT NULL,
  rid INTEGER NOT NULL,
  PRIMARY KEY (name, ecosystem, rid)
) WITHOUT ROWID;
CREATE INDEX affected_rid ON affected (rid);
`;

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
    prepareSchema(db, path, create);
    return new SqliteAdvisoryStore(db);
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

function prepareSchema(db: Database.Database, path: string, create: boolean): void {
  const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
  if (tables.length === 0) {
    if (!create) {
      throw new ContainmentError(
        ErrorCodes.DB_UNREADABLE,
        `${path} holds no advisories; run \`containment db update\` or \`containment db import <path>\` first`,
      );
    }
    db.transaction(() => {
      db.exec(SCHEMA);
      db.prepare(`INSERT INTO meta (key, value) VALUES ('schema_version', ?)`).run(SCHEMA_VERSION);
    })();
    return;
  }
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

class SqliteAdvisoryStore implements AdvisoryStore {
  /** Imports run one after another: each holds the connection's single write transaction. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    const p = (sql: string) => db.prepare(sql);
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
    // One transaction for the whole import, held across the source's awaits: a failure (or a
    // crash) leaves the previous state intact, and other connections never see half an import.
    db.exec('BEGIN IMMEDIATE');
    try {
      const importId = Number(
        db
          .prepare(`INSERT INTO imports (source, started_at) VALUES (?, ?)`)
          .run(options.source ?? null, new Date().toISOString()).lastInsertRowid,
      );
      const write = this.recordWriter(importId);
      const tally = new ImportTally();
      let processed = 0;
      for await (const item of items) {
        const record = tally.validate(item);
        if (record) tally.record(record.id, write(record));
        options.onProgress?.(++processed);
      }
      db.prepare(`UPDATE imports SET finished_at = ? WHERE id = ?`).run(new Date().toISOString(), importId);
      db.exec('COMMIT');
      return tally.report(importId);
    } catch (e) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw e;
    }
  }

  /** Stores one valid record unless identical to the stored one; says what happened. */
  private recordWriter(importId: number): (record: OsvRecord) => WriteOutcome {
    const p = (sql: string) => this.db.prepare(sql);
    const selectExisting = p(`SELECT rid, hash FROM records WHERE id = ?`);
    const insertRecord = p(
      `INSERT INTO records (id, modified, withdrawn, hash, json, import_id) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    const updateRecord = p(
      `UPDATE records SET modified = ?, withdrawn = ?, hash = ?, json = ?, import_id = ? WHERE rid = ?`,
    );
    const deleteAffected = p(`DELETE FROM affected WHERE rid = ?`);
    const insertAffected = p(`INSERT OR IGNORE INTO affected (name, ecosystem, rid) VALUES (?, ?, ?)`);

    return (record) => {
      const json = JSON.stringify(record);
      const hash = createHash('sha256').update(json).digest();
      const existing = selectExisting.get(record.id) as { rid: number; hash: Buffer } | undefined;
      if (existing !== undefined && hash.equals(existing.hash)) return 'unchanged';
      const withdrawn = record.withdrawn ?? null;
      let rid: number;
      if (existing === undefined) {
        rid = Number(
          insertRecord.run(record.id, record.modified, withdrawn, hash, json, importId).lastInsertRowid,
        );
      } else {
        rid = existing.rid;
        updateRecord.run(record.modified, withdrawn, hash, json, importId, rid);
        deleteAffected.run(rid);
      }
      // Withdrawn records are kept (get() shows them) but have no index rows, so never match.
      if (withdrawn !== null) return 'withdrawn';
      for (const { package: pkg } of record.affected ?? []) {
        if (pkg !== undefined)
          insertAffected.run(normalizePackageName(pkg.ecosystem, pkg.name), pkg.ecosystem, rid);
      }
      return existing === undefined ? 'added' : 'changed';
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

  close(): void {
    this.db.close();
  }
}
