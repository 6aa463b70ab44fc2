/**
 * `ScannerStore` on one SQLite file (better-sqlite3, WAL). The outbox (`SqliteOutbox`) and the API
 * tokens live on the same connection, so a scan, its history row and its CloudEvents commit in one
 * transaction. A scan row points at a `scanner_results` row; a result references its inventory
 * (stored once per distinct content) and its findings as (package index, finding set) pairs, each
 * distinct finding set stored once (`result-codec.ts`). A check-in (unchanged inventory hash)
 * adds only a scan row pointing at the previous result. Statements are prepared once and cached.
 */
import type { Database as Db, Statement } from 'better-sqlite3';
import { ConflictError, ErrorCodes, NotFoundError } from '../../errors.js';
import type { DeliveryTarget } from '../../events/deliverer.js';
import type { WorkloadIdentity } from '../../events/cloud-event.js';
import { migrateSqlite } from '../../storage/migrations.js';
import { SqliteOutbox } from '../../storage/outbox/sqlite-outbox.js';
import { scannerMigrations } from '../../storage/scanner/migrations.js';
import { DetectionStore } from '../../storage/scanner/detections.js';
import type { InTransaction } from '../../storage/scanner/detections.js';
import { TriggerStore } from '../../storage/scanner/triggers.js';
import { sqliteDb } from '../../storage/sql.js';
import { configureSqlite, openSqlite } from '../../storage/sqlite.js';
import type { InsecureConfiguration } from '../../inventory/types.js';
import type { FindingSet } from '../finding-sets.js';
import { contentOf } from '../package-matcher.js';
import { ResultCodec, lazyEventContext, rematchTarget } from './result-codec.js';
import type { EncodedContent, ResultRow, StoredBlobs } from './result-codec.js';
import type {
  ClusterListing,
  ClusterRecord,
  ImageQuery,
  NamespaceSummary,
  NewTrigger,
  Page,
  RecordRematchInput,
  RecordRematchOutcome,
  RecordScanInput,
  RematchTarget,
  RecordScanOutcome,
  ReportRef,
  ScanContent,
  ScanDetail,
  ScanEventContext,
  ScanKind,
  ScannerStore,
  ScanRecord,
  StoredInventory,
  TriggerRecord,
  Visibility,
  WorkloadFilter,
  WorkloadRecord,
} from './scanner-store.js';
import { identityOf } from './workload-row.js';
import type { WorkloadRow } from './workload-row.js';

const iso = (ms: number): string => new Date(ms).toISOString();
/** Re-matches written per transaction by `recordRematches`. */
const REMATCH_TRANSACTION = 50;

interface ScanRow extends WorkloadRow {
  id: number;
  report_id: string;
  kind: ScanKind;
  scan_time: number;
  received_at: number;
  inventory_hash: string;
  summary: string;
}

type ScanDetailRow = ScanRow & ResultRow;

function scanOf(row: ScanRow): ScanRecord {
  return {
    id: row.id,
    reportId: row.report_id,
    workload: identityOf(row),
    scanTime: iso(row.scan_time),
    receivedAt: iso(row.received_at),
    inventoryHash: row.inventory_hash,
    kind: row.kind,
    summary: JSON.parse(row.summary) as ScanRecord['summary'],
  };
}

/**
 * SQL condition (over aliases `c` = cluster, `w` = workload) limiting rows to what a reader may
 * see, plus optional workload filters. Every read goes through it.
 */
function visibleWhere(visibility: Visibility, filter: WorkloadFilter = {}): { sql: string; params: object } {
  const parts: string[] = [];
  const params: Record<string, string> = {};
  if (visibility.cluster !== '*') {
    parts.push('c.name = @visCluster');
    params.visCluster = visibility.cluster;
  }
  if (visibility.namespaces !== '*') {
    parts.push('w.namespace IN (SELECT value FROM json_each(@visNamespaces))');
    params.visNamespaces = JSON.stringify(visibility.namespaces);
  }
  for (const key of ['namespace', 'pod', 'container'] as const) {
    const value = filter[key];
    if (value === undefined) continue;
    parts.push(`w.${key} = @f_${key}`);
    params[`f_${key}`] = value;
  }
  return { sql: parts.length === 0 ? '1' : parts.join(' AND '), params };
}

const SCAN_COLUMNS = `s.id, s.report_id, s.kind, s.scan_time, s.received_at, s.inventory_hash,
  c.name AS cluster, w.namespace, w.pod, w.container, s.node, s.image, s.image_digest, r.summary`;
const SCAN_FROM = `scanner_scans s
  JOIN scanner_workloads w ON w.id = s.workload_id
  JOIN scanner_clusters c ON c.id = w.cluster_id
  JOIN scanner_results r ON r.id = s.result_id`;

export interface SqliteScannerStoreOptions {
  /** Clock (epoch ms) for created/received times (tests). */
  now?: () => number;
}

export class SqliteScannerStore implements ScannerStore {
  /** The outbox on this connection: events commit with the scans that caused them. */
  readonly queue: SqliteOutbox;
  readonly detections: DetectionStore;
  private readonly now: () => number;
  private readonly codec = new ResultCodec();
  private readonly triggers: TriggerStore;
  private readonly statements = new Map<string, Statement>();

  /** Opens (creating if needed) the database at `path`. */
  static open(path: string, options: SqliteScannerStoreOptions = {}): SqliteScannerStore {
    return new SqliteScannerStore(openSqlite(path), options);
  }

  /** Uses an open connection (shared with the token store); the store takes ownership of closing it. */
  constructor(
    readonly db: Db,
    options: SqliteScannerStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    configureSqlite(db);
    migrateSqlite(db, scannerMigrations({ sqlite: () => this.convertWholeResults() }));
    this.queue = new SqliteOutbox(db);
    this.triggers = new TriggerStore(sqliteDb(db), this.now);
    this.detections = new DetectionStore(sqliteDb(db), this.detectionTransaction());
  }

  /**
   * Detection writes are awaited statement by statement (the seam is async), so they take the
   * write lock explicitly and run one at a time. A synchronous transaction of another request
   * that runs between two awaits nests as a savepoint and commits with this one.
   */
  private detectionTransaction(): InTransaction {
    const db = sqliteDb(this.db);
    let tail: Promise<unknown> = Promise.resolve();
    return <T>(work: Parameters<InTransaction>[0]) => {
      const run = async (): Promise<T> => {
        this.db.exec('BEGIN IMMEDIATE');
        try {
          const result = (await work({
            db,
            enqueue: async (event, triggerIds) => this.queue.enqueue(this.db, event, triggerIds),
          })) as T;
          this.db.exec('COMMIT');
          return result;
        } catch (e) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          throw e;
        }
      };
      const next = tail.then(run, run);
      tail = next.catch(() => undefined);
      return next;
    };
  }

  /**
   * From the previous layout: each whole result becomes blobs and runs in place, keeping its id,
   * in the migration's transaction.
   */
  private convertWholeResults(): void {
    // A page at a time: whole results are large, and no statement may write while one iterates.
    const page = this.db.prepare(
      'SELECT id, inventory, vulnerabilities FROM scanner_results WHERE id > ? ORDER BY id LIMIT 50',
    );
    const update = this.db.prepare('UPDATE scanner_results SET inventory_id = ?, runs = ? WHERE id = ?');
    for (let after = 0; ;) {
      const rows = page.all(after) as { id: number; inventory: string; vulnerabilities: string }[];
      if (rows.length === 0) break;
      for (const row of rows) {
        const encoded = this.codec.encode({
          inventory: JSON.parse(row.inventory) as StoredInventory,
          vulnerabilities: JSON.parse(row.vulnerabilities) as ScanDetail['vulnerabilities'],
        });
        const stored = this.storeBlobs(encoded);
        update.run(Number(stored.inventoryId), this.codec.runsJson(encoded, stored.setIds), row.id);
        after = row.id;
      }
    }
  }

  /** The statement for `sql`, prepared once per connection. */
  private stmt(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  async ping(): Promise<void> {
    this.stmt('SELECT 1').get();
  }

  private scanDetailOf(row: ScanDetailRow): ScanDetail {
    const content = this.decodeContent(row);
    return {
      ...scanOf(row),
      vulnerabilities: content.vulnerabilities,
      insecureConfigurations: content.insecureConfigurations,
      inventory: content.inventory,
    };
  }

  private clusterId(name: string): number | undefined {
    const row = this.stmt('SELECT id FROM scanner_clusters WHERE name = ?').get(name) as
      { id: number } | undefined;
    return row?.id;
  }

  async createCluster(name: string): Promise<ClusterRecord> {
    const at = this.now();
    const inserted = this.stmt(
      'INSERT INTO scanner_clusters (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
    ).run(name, at);
    if (inserted.changes === 0)
      throw new ConflictError(ErrorCodes.CLUSTER_EXISTS, `cluster ${name} already exists`);
    return { name, createdAt: iso(at) };
  }

  async getCluster(name: string): Promise<ClusterRecord | undefined> {
    const row = this.stmt('SELECT name, created_at FROM scanner_clusters WHERE name = ?').get(name) as
      { name: string; created_at: number } | undefined;
    return row && { name: row.name, createdAt: iso(row.created_at) };
  }

  async listClusters(visibility: Visibility): Promise<ClusterListing[]> {
    const where = visibleWhere(visibility);
    // The workload count obeys the namespace filter; the cluster filter applies to clusters themselves.
    const rows = this.stmt(
      `SELECT c.name, c.created_at,
           (SELECT count(*) FROM scanner_workloads w WHERE w.cluster_id = c.id AND ${where.sql}) AS workloads
         FROM scanner_clusters c
         WHERE ${visibility.cluster === '*' ? '1' : 'c.name = @visCluster'}
         ORDER BY c.name`,
    ).all(where.params) as { name: string; created_at: number; workloads: number }[];
    return rows.map((r) => ({ name: r.name, createdAt: iso(r.created_at), workloads: r.workloads }));
  }

  async deleteCluster(name: string): Promise<boolean> {
    return this.stmt('DELETE FROM scanner_clusters WHERE name = ?').run(name).changes === 1;
  }

  async findReport(cluster: string, reportId: string): Promise<ReportRef | undefined> {
    const row = this.stmt(
      `SELECT s.id, s.kind, c.name AS cluster, w.namespace, w.pod, w.container, s.node, s.image, s.image_digest
         FROM scanner_reports rp
         JOIN scanner_clusters c ON c.id = rp.cluster_id
         JOIN scanner_scans s ON s.id = rp.scan_id
         JOIN scanner_workloads w ON w.id = s.workload_id
         WHERE c.name = ? AND rp.report_id = ?`,
    ).get(cluster, reportId) as (WorkloadRow & { id: number; kind: ReportRef['kind'] }) | undefined;
    return row && { scanId: row.id, kind: row.kind, workload: identityOf(row) };
  }

  async lastInventoryHash(workload: WorkloadIdentity): Promise<string | undefined> {
    const row = this.stmt(
      `SELECT s.inventory_hash FROM scanner_workloads w
         JOIN scanner_clusters c ON c.id = w.cluster_id
         JOIN scanner_scans s ON s.id = w.last_scan_id
         WHERE c.name = ? AND w.namespace = ? AND w.pod = ? AND w.container = ?`,
    ).get(workload.cluster, workload.namespace, workload.pod, workload.container ?? '') as
      { inventory_hash: string } | undefined;
    return row?.inventory_hash;
  }

  async recordScan(input: RecordScanInput): Promise<RecordScanOutcome> {
    const { workload } = input;
    // Encoding (hashing, JSON) happens before the write lock is taken.
    const encoded = input.content ? this.codec.encode(input.content) : undefined;
    // IMMEDIATE: take the write lock before reading "the previous scan", so two reports for one
    // workload cannot both diff against the same predecessor.
    let stored: StoredBlobs | undefined;
    const outcome = this.db
      .transaction((): RecordScanOutcome => {
        const clusterId = this.clusterId(workload.cluster);
        if (clusterId === undefined) {
          throw new NotFoundError(
            ErrorCodes.CLUSTER_NOT_FOUND,
            `cluster ${workload.cluster} is not registered`,
          );
        }
        const seen = this.stmt(
          `SELECT rp.scan_id, s.kind, w.namespace, w.pod, w.container, s.node, s.image, s.image_digest
           FROM scanner_reports rp JOIN scanner_scans s ON s.id = rp.scan_id
           JOIN scanner_workloads w ON w.id = s.workload_id
           WHERE rp.cluster_id = ? AND rp.report_id = ?`,
        ).get(clusterId, input.reportId) as
          (Omit<WorkloadRow, 'cluster'> & { scan_id: number; kind: ReportRef['kind'] }) | undefined;
        if (seen) {
          return {
            status: 'duplicate',
            scanId: seen.scan_id,
            kind: seen.kind,
            workload: identityOf({ ...seen, cluster: workload.cluster }),
          };
        }

        const now = this.now();
        const container = workload.container ?? '';
        const existing = this.stmt(
          `SELECT w.id, w.last_scan_id, s.result_id, s.inventory_hash, r.inventory_id, r.runs,
             r.insecure_configurations, r.summary
           FROM scanner_workloads w
           LEFT JOIN scanner_scans s ON s.id = w.last_scan_id
           LEFT JOIN scanner_results r ON r.id = s.result_id
           WHERE w.cluster_id = ? AND w.namespace = ? AND w.pod = ? AND w.container = ?`,
        ).get(clusterId, workload.namespace, workload.pod, container) as
          | (Partial<ResultRow> & {
              id: number;
              last_scan_id: number | null;
              result_id: number | null;
              inventory_hash: string | null;
            })
          | undefined;

        if (!input.content && (existing?.inventory_hash ?? undefined) !== input.inventoryHash) {
          return { status: 'hash-changed' };
        }

        let workloadId: number;
        if (existing) {
          workloadId = existing.id;
          this.stmt(
            'UPDATE scanner_workloads SET node = ?, image = ?, image_digest = ?, last_seen = ? WHERE id = ?',
          ).run(workload.node, workload.image, workload.imageDigest ?? null, now, workloadId);
        } else {
          workloadId = Number(
            this.stmt(
              `INSERT INTO scanner_workloads
                 (cluster_id, namespace, pod, container, node, image, image_digest, first_seen, last_seen)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            ).run(
              clusterId,
              workload.namespace,
              workload.pod,
              container,
              workload.node,
              workload.image,
              workload.imageDigest ?? null,
              now,
              now,
            ).lastInsertRowid,
          );
        }
        const previous =
          existing?.result_id == null ? undefined : (existing as ResultRow & { result_id: number });

        let resultId: number;
        let inventoryId: number;
        let content: () => ScanEventContext['content'];
        if (input.content && encoded) {
          const fresh = input.content;
          content = () => fresh;
          stored = this.storeBlobs(encoded);
          inventoryId = Number(stored.inventoryId);
          resultId = this.insertResult(
            workloadId,
            inventoryId,
            this.codec.runsJson(encoded, stored.setIds),
            fresh,
          );
        } else {
          // A check-in: the hash matched above, so the previous result exists.
          const prev = previous as ResultRow & { result_id: number };
          resultId = prev.result_id;
          inventoryId = prev.inventory_id;
          content = () => this.decodeContent(prev);
        }

        const scanId = Number(
          this.stmt(
            `INSERT INTO scanner_scans (workload_id, result_id, report_id, kind, scan_time, received_at,
               inventory_hash, node, image, image_digest)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(
            workloadId,
            resultId,
            input.reportId,
            input.content ? 'full' : 'check-in',
            input.scanTime.getTime(),
            now,
            input.inventoryHash,
            workload.node,
            workload.image,
            workload.imageDigest ?? null,
          ).lastInsertRowid,
        );
        this.stmt('UPDATE scanner_workloads SET last_scan_id = ?, inventory_id = ? WHERE id = ?').run(
          scanId,
          inventoryId,
          workloadId,
        );
        this.stmt('INSERT INTO scanner_reports (cluster_id, report_id, scan_id) VALUES (?, ?, ?)').run(
          clusterId,
          input.reportId,
          scanId,
        );

        const planned = input.events(
          this.eventContext({
            scanId,
            previous,
            content,
            checkIn: !input.content,
            triggers: () => this.triggersFor(clusterId, workload.namespace),
          }),
        );
        for (const { event, triggerIds } of planned) this.queue.enqueue(this.db, event, triggerIds);
        return {
          status: 'recorded',
          scanId,
          kind: input.content ? 'full' : 'check-in',
          events: planned.length,
        };
      })
      .immediate();
    if (encoded && stored && outcome.status === 'recorded')
      this.codec.rememberStored(encoded, stored.inventoryId, stored.setIds);
    return outcome;
  }

  /** The event callback's view; findings are decoded only if the callback asks for them. */
  private eventContext(parts: {
    scanId: number;
    previous: ResultRow | undefined;
    content: () => ScanEventContext['content'];
    checkIn: boolean;
    triggers: () => ScanEventContext['triggers'];
  }): ScanEventContext {
    const { previous } = parts;
    return lazyEventContext({
      scanId: parts.scanId,
      checkIn: parts.checkIn,
      triggers: parts.triggers(),
      previousKeys: () => (previous === undefined ? undefined : this.decodeContent(previous).findingKeys),
      content: parts.content,
    });
  }

  /** Inserts the blobs the content needs and the codec does not know to be stored. */
  private storeBlobs(encoded: EncodedContent): StoredBlobs {
    const { inventory } = encoded;
    let inventoryId = inventory.knownId ?? this.codec.inventoryId(inventory.digest);
    if (inventoryId === undefined) {
      const found = this.stmt('SELECT id FROM scanner_inventories WHERE digest = ?')
        .pluck()
        .get(inventory.digest) as number | undefined;
      if (found !== undefined) inventoryId = String(found);
      else {
        const id = Number(
          this.stmt('INSERT INTO scanner_inventories (digest, inventory) VALUES (?, ?)').run(
            inventory.digest,
            inventory.json,
          ).lastInsertRowid,
        );
        this.stmt(
          'INSERT OR IGNORE INTO scanner_inventory_keys (key, inventory_id) SELECT value, ? FROM json_each(?)',
        ).run(id, JSON.stringify(inventory.packageKeys()));
        inventoryId = String(id);
      }
    }
    const setIds = new Map<string, string>();
    for (const set of encoded.sets) {
      let id = this.codec.setId(set.digest);
      if (id === undefined) {
        const found = this.stmt('SELECT id FROM scanner_finding_sets WHERE digest = ?')
          .pluck()
          .get(set.digest) as number | undefined;
        id = String(
          found ??
            this.stmt('INSERT INTO scanner_finding_sets (digest, findings) VALUES (?, ?)').run(
              set.digest,
              set.body,
            ).lastInsertRowid,
        );
      }
      setIds.set(set.digest, id);
    }
    if (encoded.advisoryPackages.length > 0) {
      this.stmt(
        `INSERT OR IGNORE INTO scanner_advisory_packages (advisory_key, package_key)
         SELECT value ->> 0, value ->> 1 FROM json_each(?)`,
      ).run(JSON.stringify(encoded.advisoryPackages));
    }
    return { inventoryId, setIds };
  }

  private insertResult(
    workloadId: number,
    inventoryId: number,
    runsJson: string,
    content: Pick<ScanContent, 'insecureConfigurations' | 'summary'>,
  ): number {
    return Number(
      this.stmt(
        `INSERT INTO scanner_results (workload_id, inventory_id, runs, insecure_configurations, summary)
         VALUES (?, ?, ?, ?, ?)`,
      ).run(
        workloadId,
        inventoryId,
        runsJson,
        JSON.stringify(content.insecureConfigurations),
        JSON.stringify(content.summary),
      ).lastInsertRowid,
    );
  }

  private inventory(id: number): StoredInventory {
    const cached = this.codec.cachedInventory(String(id));
    if (cached) return cached;
    const json = this.stmt('SELECT inventory FROM scanner_inventories WHERE id = ?')
      .pluck()
      .get(id) as string;
    return this.codec.rememberInventory(String(id), json);
  }

  private sets(ids: readonly string[]): Map<string, FindingSet> {
    const { found, missing } = this.codec.cachedSets(ids);
    if (missing.length === 0) return found;
    const rows = this.stmt(
      'SELECT id, digest, findings FROM scanner_finding_sets WHERE id IN (SELECT value FROM json_each(?))',
    ).all(JSON.stringify(missing.map(Number))) as { id: number; digest: string; findings: string }[];
    return this.codec.addSets(found, rows);
  }

  /** A stored result's content, findings decoded. */
  private decodeContent(row: ResultRow): ScanContent {
    const inventory = this.inventory(row.inventory_id);
    const sets = this.sets(this.codec.setIdsOf(row.runs));
    return contentOf(
      inventory,
      this.codec.runs(inventory.packages, row.runs, sets),
      JSON.parse(row.insecure_configurations) as InsecureConfiguration[],
    );
  }

  /** Triggers of the cluster covering the namespace. */
  private triggersFor(clusterId: number, namespace: string): ScanEventContext['triggers'] {
    return (
      this.stmt(
        'SELECT id, namespaces, every_scan FROM scanner_triggers WHERE cluster_id = ? ORDER BY id',
      ).all(clusterId) as { id: string; namespaces: string; every_scan: number }[]
    )
      .filter((t) => {
        const namespaces = JSON.parse(t.namespaces) as string[] | '*';
        return namespaces === '*' || namespaces.includes(namespace);
      })
      .map((t) => ({ id: t.id, everyScan: t.every_scan === 1 }));
  }

  async rematchCandidates(keys: readonly string[]): Promise<number[]> {
    return this.stmt(
      `WITH k(key) AS (SELECT value FROM json_each(?)),
         pk(key) AS (SELECT key FROM k
                     UNION SELECT ap.package_key FROM scanner_advisory_packages ap JOIN k ON ap.advisory_key = k.key)
       SELECT DISTINCT w.id FROM pk
       JOIN scanner_inventory_keys ik ON ik.key = pk.key
       JOIN scanner_workloads w ON w.inventory_id = ik.inventory_id
       ORDER BY w.id`,
    )
      .pluck()
      .all(JSON.stringify(keys)) as number[];
  }

  async rematchTargets(workloadIds: readonly number[]): Promise<RematchTarget[]> {
    const rows = this.stmt(
      `SELECT w.id AS workload_id, s.id AS scan_id, s.scan_time, s.inventory_hash, c.name AS cluster,
         w.namespace, w.pod, w.container, s.node, s.image, s.image_digest,
         r.inventory_id, r.runs, r.insecure_configurations, r.summary
       FROM scanner_workloads w
       JOIN scanner_clusters c ON c.id = w.cluster_id
       JOIN scanner_scans s ON s.id = w.last_scan_id
       JOIN scanner_results r ON r.id = s.result_id
       WHERE w.id IN (SELECT value FROM json_each(?))
       ORDER BY w.id`,
    ).all(JSON.stringify(workloadIds)) as (WorkloadRow &
      ResultRow & {
        workload_id: number;
        scan_id: number;
        scan_time: number;
        inventory_hash: string;
      })[];
    // Every set of the batch in one query.
    const sets = this.sets([...new Set(rows.flatMap((r) => this.codec.setIdsOf(r.runs)))]);
    return rows.map((row) => {
      const inventory = this.inventory(row.inventory_id);
      return rematchTarget({
        workloadId: row.workload_id,
        workload: identityOf(row),
        scanId: row.scan_id,
        scanTime: iso(row.scan_time),
        inventoryHash: row.inventory_hash,
        inventory,
        runs: this.codec.runs(inventory.packages, row.runs, sets),
        insecureConfigurations: JSON.parse(row.insecure_configurations) as InsecureConfiguration[],
      });
    });
  }

  async recordRematch(input: RecordRematchInput): Promise<RecordRematchOutcome> {
    const [outcome] = await this.recordRematches([input]);
    return outcome as RecordRematchOutcome;
  }

  async recordRematches(inputs: readonly RecordRematchInput[]): Promise<RecordRematchOutcome[]> {
    const outcomes: RecordRematchOutcome[] = [];
    // A few dozen per transaction: fewer commits, yet the event loop is never held for long.
    for (let start = 0; start < inputs.length; start += REMATCH_TRANSACTION) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      const chunk = inputs.slice(start, start + REMATCH_TRANSACTION);
      const encoded = chunk.map((input) => this.codec.encode(input.content));
      const results = this.db
        .transaction(() => chunk.map((input, i) => this.rematchOne(input, encoded[i] as EncodedContent)))
        .immediate();
      for (const [i, r] of results.entries()) {
        if (r.stored)
          this.codec.rememberStored(encoded[i] as EncodedContent, r.stored.inventoryId, r.stored.setIds);
        outcomes.push(r.outcome);
      }
    }
    return outcomes;
  }

  /** One re-match, inside the caller's transaction. */
  private rematchOne(
    input: RecordRematchInput,
    encoded: EncodedContent,
  ): { outcome: RecordRematchOutcome; stored?: StoredBlobs } {
    const base = this.stmt(
      `SELECT w.cluster_id, w.namespace, w.last_scan_id, s.scan_time, s.inventory_hash, s.node, s.image,
         s.image_digest, s.result_id, r.inventory_id, r.runs, r.insecure_configurations, r.summary
       FROM scanner_workloads w
       JOIN scanner_scans s ON s.id = w.last_scan_id
       JOIN scanner_results r ON r.id = s.result_id
       WHERE w.id = ?`,
    ).get(input.workloadId) as
      | (ResultRow & {
          cluster_id: number;
          namespace: string;
          last_scan_id: number;
          scan_time: number;
          inventory_hash: string;
          node: string;
          image: string;
          image_digest: string | null;
        })
      | undefined;
    if (base?.last_scan_id !== input.basedOnScanId) return { outcome: { status: 'stale' } };
    const { content } = input;
    const stored = this.storeBlobs(encoded);
    const inventoryId = Number(stored.inventoryId);
    const resultId = this.insertResult(
      input.workloadId,
      inventoryId,
      this.codec.runsJson(encoded, stored.setIds),
      content,
    );
    // Never before the scan it re-derives, or `latestScans` would still pick that one.
    const scanTime = Math.max(input.scanTime.getTime(), base.scan_time);
    const scanId = Number(
      this.stmt(
        `INSERT INTO scanner_scans (workload_id, result_id, report_id, kind, scan_time, received_at,
           inventory_hash, node, image, image_digest)
         VALUES (?, ?, ?, 'rematch', ?, ?, ?, ?, ?, ?)`,
      ).run(
        input.workloadId,
        resultId,
        `rematch:${input.basedOnScanId}`,
        scanTime,
        this.now(),
        base.inventory_hash,
        base.node,
        base.image,
        base.image_digest,
      ).lastInsertRowid,
    );
    this.stmt('UPDATE scanner_workloads SET last_scan_id = ?, inventory_id = ? WHERE id = ?').run(
      scanId,
      inventoryId,
      input.workloadId,
    );
    const planned = input.events(
      this.eventContext({
        scanId,
        previous: base,
        content: () => content,
        checkIn: false,
        triggers: () => this.triggersFor(base.cluster_id, base.namespace),
      }),
    );
    for (const { event, triggerIds } of planned) this.queue.enqueue(this.db, event, triggerIds);
    return { outcome: { status: 'recorded', scanId, events: planned.length }, stored };
  }

  async rematchCursor(): Promise<number | undefined> {
    const value = this.stmt(`SELECT value FROM scanner_meta WHERE key = 'rematch_cursor'`).pluck().get() as
      string | undefined;
    return value === undefined ? undefined : Number(value);
  }

  async setRematchCursor(importId: number): Promise<void> {
    this.stmt(
      `INSERT INTO scanner_meta (key, value) VALUES ('rematch_cursor', ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    ).run(String(importId));
  }

  async latestScans(
    cluster: string,
    visibility: Visibility,
    filter: WorkloadFilter & { pod: string },
    at: Date,
  ): Promise<ScanDetail[]> {
    const where = visibleWhere(visibility, filter);
    const rows = this.stmt(
      `SELECT ${SCAN_COLUMNS}, r.inventory_id, r.runs, r.insecure_configurations
         FROM ${SCAN_FROM}
         WHERE c.name = @cluster AND ${where.sql}
           AND s.id = (SELECT s2.id FROM scanner_scans s2 WHERE s2.workload_id = w.id AND s2.scan_time <= @at
                       ORDER BY s2.scan_time DESC, s2.id DESC LIMIT 1)
         ORDER BY w.container`,
    ).all({ ...where.params, cluster, at: at.getTime() }) as ScanDetailRow[];
    return rows.map((row) => this.scanDetailOf(row));
  }

  async listWorkloads(visibility: Visibility, filter: WorkloadFilter, page: Page): Promise<WorkloadRecord[]> {
    const where = visibleWhere(visibility, filter);
    const rows = this.stmt(
      `SELECT c.name AS cluster, w.namespace, w.pod, w.container, w.node, w.image, w.image_digest,
           w.first_seen, w.last_seen, s.id AS scan_id, s.scan_time, s.kind, r.summary
         FROM scanner_workloads w
         JOIN scanner_clusters c ON c.id = w.cluster_id
         LEFT JOIN scanner_scans s ON s.id = w.last_scan_id
         LEFT JOIN scanner_results r ON r.id = s.result_id
         WHERE ${where.sql}
         ORDER BY c.name, w.namespace, w.pod, w.container
         LIMIT @limit OFFSET @offset`,
    ).all({ ...where.params, ...page }) as (WorkloadRow & {
      first_seen: number;
      last_seen: number;
      scan_id: number | null;
      scan_time: number | null;
      kind: ScanKind | null;
      summary: string | null;
    })[];
    return rows.map((r) => ({
      workload: identityOf(r),
      firstSeen: iso(r.first_seen),
      lastSeen: iso(r.last_seen),
      ...(r.scan_id === null
        ? {}
        : {
            lastScan: {
              id: r.scan_id,
              scanTime: iso(r.scan_time as number),
              kind: r.kind as ScanKind,
              summary: JSON.parse(r.summary as string) as ScanRecord['summary'],
            },
          }),
    }));
  }

  async listScans(visibility: Visibility, filter: WorkloadFilter, page: Page): Promise<ScanRecord[]> {
    const where = visibleWhere(visibility, filter);
    const rows = this.stmt(
      `SELECT ${SCAN_COLUMNS} FROM ${SCAN_FROM} WHERE ${where.sql}
         ORDER BY s.scan_time DESC, s.id DESC LIMIT @limit OFFSET @offset`,
    ).all({ ...where.params, ...page }) as ScanRow[];
    return rows.map(scanOf);
  }

  async getScan(id: number, visibility: Visibility): Promise<ScanDetail | undefined> {
    const where = visibleWhere(visibility);
    const row = this.stmt(
      `SELECT ${SCAN_COLUMNS}, r.inventory_id, r.runs, r.insecure_configurations
         FROM ${SCAN_FROM} WHERE s.id = @id AND ${where.sql}`,
    ).get({ ...where.params, id }) as ScanDetailRow | undefined;
    return row && this.scanDetailOf(row);
  }

  async imageScans(visibility: Visibility, query: ImageQuery, limit: number): Promise<ScanRecord[]> {
    const where = visibleWhere(visibility);
    const rows = this.stmt(
      `SELECT ${SCAN_COLUMNS}
         FROM scanner_workloads w
         JOIN scanner_clusters c ON c.id = w.cluster_id
         JOIN scanner_scans s ON s.id = w.last_scan_id
         JOIN scanner_results r ON r.id = s.result_id
         WHERE (w.image = @image OR w.image_digest = @digest) AND ${where.sql}
         ORDER BY s.scan_time DESC, s.id DESC LIMIT @limit`,
    ).all({ ...where.params, image: query.image, digest: query.digest ?? null, limit }) as ScanRow[];
    return rows.map(scanOf);
  }

  async summary(visibility: Visibility, filter: { namespace?: string }): Promise<NamespaceSummary[]> {
    const where = visibleWhere(visibility, filter);
    const rows = this.stmt(
      `SELECT c.name AS cluster, w.namespace, r.summary
         FROM scanner_workloads w
         JOIN scanner_clusters c ON c.id = w.cluster_id
         JOIN scanner_scans s ON s.id = w.last_scan_id
         JOIN scanner_results r ON r.id = s.result_id
         WHERE ${where.sql}
         ORDER BY c.name, w.namespace`,
    ).all(where.params) as { cluster: string; namespace: string; summary: string }[];
    const byNamespace = new Map<string, NamespaceSummary>();
    for (const row of rows) {
      const summary = JSON.parse(row.summary) as ScanRecord['summary'];
      const key = `${row.cluster}\u0000${row.namespace}`;
      let entry = byNamespace.get(key);
      if (!entry) {
        entry = {
          cluster: row.cluster,
          namespace: row.namespace,
          workloads: 0,
          vulnerableWorkloads: 0,
          compliantWorkloads: 0,
          counts: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
          configurationCounts: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
        };
        byNamespace.set(key, entry);
      }
      entry.workloads += 1;
      let vulnerable = false;
      for (const [severity, n] of Object.entries(summary.counts) as [keyof typeof summary.counts, number][]) {
        entry.counts[severity] += n;
        if (n > 0) vulnerable = true;
      }
      for (const [severity, n] of Object.entries(summary.configurationCounts) as [
        keyof typeof summary.counts,
        number,
      ][])
        entry.configurationCounts[severity] += n;
      if (vulnerable) entry.vulnerableWorkloads += 1;
      if (summary.compliance.passed) entry.compliantWorkloads += 1;
    }
    return [...byNamespace.values()];
  }

  createTrigger(input: NewTrigger): Promise<TriggerRecord> {
    return this.triggers.create(input);
  }

  getTrigger(id: string): Promise<TriggerRecord | undefined> {
    return this.triggers.get(id);
  }

  listTriggers(): Promise<TriggerRecord[]> {
    return this.triggers.list();
  }

  deleteTrigger(id: string): Promise<boolean> {
    return this.triggers.delete(id);
  }

  triggerTarget(id: string): Promise<DeliveryTarget | undefined> {
    return this.triggers.target(id);
  }

  listDeadLetters(
    filter: Parameters<SqliteOutbox['listDeadLetters']>[0],
  ): ReturnType<SqliteOutbox['listDeadLetters']> {
    return this.queue.listDeadLetters(filter);
  }

  replayDeadLetters(filter: Parameters<SqliteOutbox['replayDeadLetters']>[0]): Promise<number> {
    return this.queue.replayDeadLetters(filter);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
