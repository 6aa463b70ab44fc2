/**
 * PostgreSQL implementation of AdvisoryStore, for several scanner replicas sharing one database.
 * Same model as the SQLite store: records as compact JSON with a content hash, an index table of
 * (normalised name, ecosystem) → record, withdrawn records kept but never indexed. Imports are one
 * transaction each, written in batches of multi-row statements (unnest of arrays), and serialised
 * across replicas by an advisory lock, so import ids are assigned and committed in order and
 * `changedSince` never misses an import. Tables are prefixed `vulndb_` and live in the connection's
 * current schema (the lock keys include it, so stores in different schemas do not wait on each other).
 */
import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { ADVISORY_LAYOUT, ADVISORY_MIGRATIONS } from '../storage/advisories/migrations.js';
import { migratePostgres } from '../storage/migrations.js';
import type {
  AdvisoryCounts,
  AsyncAdvisoryStore,
  ImportItem,
  ImportOptions,
  ImportReport,
  ImportSummary,
  PackageQuery,
  SharedMatch,
} from './advisory-store.js';
import { oneLine } from './import-tally.js';
import { affectedKeys, runImport } from './import-run.js';
import type { EncodedRecord } from './import-run.js';
import type { OsvRecord } from './osv.js';
import { candidateEcosystems, normalizePackageName } from './package-key.js';

/** The layout marker in `vulndb_meta`; migrations are in the schema history. */
export const POSTGRES_SCHEMA_VERSION = ADVISORY_LAYOUT;

const LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext($1 || coalesce(current_schema(), '')))`;
const IMPORT_LOCK = 'containment.vulndb.import:';

export interface OpenPostgresStoreOptions {
  /** Create the tables if missing. For imports. */
  create?: boolean;
}

/**
 * Opens the store on a `postgres://` URL (the store owns its pool and ends it on close) or on a
 * caller's pool (left open on close).
 */
export async function openPostgresAdvisoryStore(
  database: string | Pool,
  options: OpenPostgresStoreOptions = {},
): Promise<AsyncAdvisoryStore> {
  const owned = typeof database === 'string';
  const where = owned ? redactUrl(database) : 'the PostgreSQL database';
  let pool: Pool;
  try {
    pool = owned ? new pg.Pool({ connectionString: database }) : database;
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.DB_UNREADABLE,
      `cannot open vulnerability database ${where}: ${message(e)}`,
      {
        cause: e,
      },
    );
  }
  // An idle pooled connection that breaks (server restart) would otherwise crash the process; the
  // pool drops it and the next query connects afresh.
  if (owned) pool.on('error', () => {});
  try {
    await prepareSchema(pool, where, options.create === true);
  } catch (e) {
    if (owned) await pool.end().catch(() => {});
    if (e instanceof ContainmentError) throw e;
    throw new ContainmentError(
      ErrorCodes.DB_UNREADABLE,
      `cannot open vulnerability database ${where}: ${message(e)}`,
      {
        cause: e,
      },
    );
  }
  return new PostgresAdvisoryStore(pool, owned);
}

async function prepareSchema(pool: Pool, where: string, create: boolean): Promise<void> {
  const present = async () => {
    const { rows } = await pool.query<{ present: boolean }>(
      `SELECT to_regclass('vulndb_meta') IS NOT NULL AS present`,
    );
    return rows[0]?.present === true;
  };
  if (!(await present()) && !create) {
    throw new ContainmentError(
      ErrorCodes.DB_UNREADABLE,
      `${where} holds no advisories; run \`containment db update\` or \`containment db import <path>\` first`,
    );
  }
  // The layout marker is checked before anything is applied: a foreign version is not touched.
  if (await present()) await checkLayout(pool, where);
  await migratePostgres(pool, ADVISORY_MIGRATIONS);
  await checkLayout(pool, where);
}

async function checkLayout(pool: Pool, where: string): Promise<void> {
  const version = await pool.query<{ value: string }>(
    `SELECT value FROM vulndb_meta WHERE key = 'schema_version'`,
  );
  const found = version.rows[0]?.value;
  if (found !== POSTGRES_SCHEMA_VERSION) {
    throw new ContainmentError(
      ErrorCodes.DB_UNREADABLE,
      `${where} has vulnerability database schema version ${found ?? 'none'}; this Containment reads version ${POSTGRES_SCHEMA_VERSION}`,
    );
  }
}

async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    // A connection that cannot even roll back is not given back to the pool.
    await client.query('ROLLBACK').catch(() => (broken = true));
    throw e;
  } finally {
    client.release(broken);
  }
}

class PostgresAdvisoryStore implements AsyncAdvisoryStore {
  /** This replica's imports queue up here (in call order) rather than on the lock, each holding a connection. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly pool: Pool,
    private readonly ownsPool: boolean,
  ) {}

  importRecords(
    items: AsyncIterable<ImportItem> | Iterable<ImportItem>,
    options: ImportOptions = {},
  ): Promise<ImportReport> {
    const run = this.queue.then(() =>
      inTransaction(this.pool, (client) => this.runImport(client, items, options)),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async runImport(
    client: PoolClient,
    items: AsyncIterable<ImportItem> | Iterable<ImportItem>,
    options: ImportOptions,
  ): Promise<ImportReport> {
    // Held until commit: another replica's import waits here, then sees this one's result.
    await client.query(LOCK_SQL, [IMPORT_LOCK]);
    const { rows } = await client.query<{ id: number }>(
      `INSERT INTO vulndb_imports (source, started_at) VALUES ($1, clock_timestamp()) RETURNING id`,
      [options.source ?? null],
    );
    const importId = rows[0]?.id;
    if (importId === undefined) throw new Error('no import id returned');
    const empty = (await client.query(`SELECT 1 FROM vulndb_records LIMIT 1`)).rows.length === 0;
    const report = await runImport(items, options, importId, {
      storedHashes: async (ids) => {
        const stored = await client.query<{ id: string; hash: Buffer }>(
          `SELECT id, hash FROM vulndb_records WHERE id = ANY($1::text[])`,
          [ids],
        );
        return new Map(stored.rows.map((row) => [row.id, row.hash]));
      },
      write: (writes) => this.write(client, importId, writes, empty),
      unstorable: (record) =>
        hasNul(record)
          ? `${JSON.stringify(record.id)}: contains a NUL character, which PostgreSQL cannot store`
          : undefined,
    });
    // The shared match cache's older generations, never read again once this one commits; last,
    // so a replica's write of a key being deleted waits for the commit only briefly.
    await client.query(`DELETE FROM vulndb_match_cache WHERE generation < $1`, [importId]);
    await client.query(`UPDATE vulndb_imports SET finished_at = clock_timestamp() WHERE id = $1`, [importId]);
    return report;
  }

  /**
   * Upserts records (one statement), then replaces their index rows (two more; the delete only
   * for records written earlier in the import when it began on an empty store).
   */
  private async write(
    client: PoolClient,
    importId: number,
    writes: readonly EncodedRecord[],
    empty: boolean,
  ): Promise<void> {
    const { rows } = await client.query<{ rid: number; id: string }>(
      `INSERT INTO vulndb_records (id, modified, withdrawn, hash, json, import_id)
       SELECT u.id, u.modified, u.withdrawn, u.hash, u.json, $6
       FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[]) AS u (id, modified, withdrawn, hash, json)
       ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, withdrawn = excluded.withdrawn,
         hash = excluded.hash, json = excluded.json, import_id = excluded.import_id
       RETURNING rid, id`,
      [
        writes.map((w) => w.record.id),
        writes.map((w) => w.record.modified),
        writes.map((w) => w.record.withdrawn ?? null),
        writes.map((w) => w.hash),
        writes.map((w) => w.json),
        importId,
      ],
    );
    const ridOf = new Map(rows.map((r) => [r.id, r.rid]));
    const replaced = empty
      ? writes.filter((w) => w.replaces === true).map((w) => ridOf.get(w.record.id))
      : rows.map((r) => r.rid);
    if (replaced.length > 0) {
      await client.query(`DELETE FROM vulndb_affected WHERE rid = ANY($1::int[])`, [replaced]);
    }
    const names: string[] = [];
    const ecosystems: string[] = [];
    const rids: number[] = [];
    for (const { record } of writes) {
      const rid = ridOf.get(record.id);
      if (rid === undefined) continue;
      for (const [name, ecosystem] of affectedKeys(record)) {
        names.push(name);
        ecosystems.push(ecosystem);
        rids.push(rid);
      }
    }
    if (rids.length === 0) return;
    await client.query(
      `INSERT INTO vulndb_affected (name, ecosystem, rid)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[])`,
      [names, ecosystems, rids],
    );
  }

  async lookup(ecosystem: string, name: string): Promise<OsvRecord[]> {
    return (await this.lookupMany([{ ecosystem, name }]))[0] ?? [];
  }

  async lookupMany(queries: readonly PackageQuery[]): Promise<OsvRecord[][]> {
    // Distinct keys only; a key PostgreSQL cannot even hold (NUL) names nothing stored.
    const keyIndex = new Map<string, number>();
    const names: string[] = [];
    const exacts: string[] = [];
    const bases: string[] = [];
    const releases: string[] = [];
    const rangeFroms: string[] = [];
    const rangeTos: string[] = [];
    const slots = queries.map(({ ecosystem, name }) => {
      const normalized = normalizePackageName(ecosystem, name);
      if (normalized.includes('\0') || ecosystem.includes('\0')) return undefined;
      const c = candidateEcosystems(ecosystem);
      const key = JSON.stringify([normalized, c.exact]);
      let slot = keyIndex.get(key);
      if (slot === undefined) {
        slot = names.push(normalized);
        exacts.push(c.exact);
        bases.push(c.base);
        releases.push(c.release);
        rangeFroms.push(c.rangeFrom);
        rangeTos.push(c.rangeTo);
        keyIndex.set(key, slot);
      }
      return slot;
    });
    const answers = new Map<number, OsvRecord[]>();
    // Two branches, each an index condition on (name, ecosystem): equality for the exact, base
    // and release ecosystems, a "C"-collated range for the RHEL stream prefix (candidateEcosystems).
    if (names.length > 0) {
      const { rows } = await this.pool.query<{ slot: number; rid: number; json: string }>(
        `SELECT h.slot, r.rid, r.json
         FROM (SELECT DISTINCT q.slot::int AS slot, a.rid
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                      WITH ORDINALITY AS q (name, exact, base, release, range_from, range_to, slot)
               CROSS JOIN LATERAL (
                 SELECT rid FROM vulndb_affected
                  WHERE name = q.name AND ecosystem = ANY (ARRAY[q.exact, q.base, q.release])
                 UNION ALL
                 SELECT rid FROM vulndb_affected
                  WHERE name = q.name AND ecosystem >= q.range_from AND ecosystem < q.range_to) a) h
         JOIN vulndb_records r ON r.rid = h.rid
         ORDER BY h.slot, r.id`,
        [names, exacts, bases, releases, rangeFroms, rangeTos],
      );
      // Records shared by several queries are parsed once per call.
      const parsed = new Map<number, OsvRecord>();
      for (const row of rows) {
        let record = parsed.get(row.rid);
        if (record === undefined) {
          record = JSON.parse(row.json) as OsvRecord;
          parsed.set(row.rid, record);
        }
        let answer = answers.get(row.slot);
        if (answer === undefined) answers.set(row.slot, (answer = []));
        answer.push(record);
      }
    }
    return slots.map((slot) => [...((slot !== undefined && answers.get(slot)) || [])]);
  }

  async get(id: string): Promise<OsvRecord | undefined> {
    if (id.includes('\0')) return undefined;
    const { rows } = await this.pool.query<{ json: string }>(
      `SELECT json FROM vulndb_records WHERE id = $1`,
      [id],
    );
    const json = rows[0]?.json;
    return json === undefined ? undefined : (JSON.parse(json) as OsvRecord);
  }

  async count(): Promise<AdvisoryCounts> {
    const { rows } = await this.pool.query<AdvisoryCounts>(
      `SELECT count(*)::int AS records, count(withdrawn)::int AS withdrawn FROM vulndb_records`,
    );
    return { records: rows[0]?.records ?? 0, withdrawn: rows[0]?.withdrawn ?? 0 };
  }

  async changedSince(importId: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT id FROM vulndb_records WHERE import_id > $1 ORDER BY id`,
      [importId],
    );
    return rows.map((r) => r.id);
  }

  async lastImport(): Promise<ImportSummary | undefined> {
    const { rows } = await this.pool.query<{
      id: number;
      source: string | null;
      started_at: Date;
      finished_at: Date;
    }>(`SELECT id, source, started_at, finished_at FROM vulndb_imports ORDER BY id DESC LIMIT 1`);
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      importId: row.id,
      source: row.source ?? undefined,
      startedAt: row.started_at.toISOString(),
      finishedAt: row.finished_at.toISOString(),
    };
  }

  async sharedMatches(generation: number, keys: readonly string[]): Promise<Map<string, string>> {
    if (keys.length === 0) return new Map();
    const { rows } = await this.pool.query<SharedMatch>(
      `SELECT key, value FROM vulndb_match_cache WHERE generation = $1 AND key = ANY($2::text[])`,
      [generation, keys],
    );
    return new Map(rows.map((row) => [row.key, row.value]));
  }

  async storeMatches(generation: number, entries: readonly SharedMatch[]): Promise<void> {
    if (entries.length === 0) return;
    // In key order: two replicas storing overlapping keys then wait for each other in the same
    // order instead of deadlocking (an insert waits on another's uncommitted row of its key).
    const sorted = [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    await this.pool.query(
      `INSERT INTO vulndb_match_cache (generation, key, value)
       SELECT $1, u.key, u.value FROM unnest($2::text[], $3::text[]) AS u (key, value)
       ON CONFLICT DO NOTHING`,
      [generation, sorted.map((e) => e.key), sorted.map((e) => e.value)],
    );
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }
}

/**
 * PostgreSQL text cannot hold U+0000; a record with one in a stored key is reported invalid
 * rather than failing the whole import. (The JSON itself escapes it.)
 */
function hasNul(record: OsvRecord): boolean {
  const keys = [record.id, record.modified, record.withdrawn ?? ''];
  for (const { package: pkg } of record.affected ?? []) if (pkg) keys.push(pkg.ecosystem, pkg.name);
  return keys.some((k) => k.includes('\0'));
}

/** The URL for messages, without its password. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.toString();
  } catch {
    return 'the PostgreSQL database (unparseable URL)';
  }
}

function message(e: unknown): string {
  return (
    oneLine(e instanceof Error ? e.message : String(e)) || String((e as { code?: unknown }).code ?? 'failed')
  );
}
