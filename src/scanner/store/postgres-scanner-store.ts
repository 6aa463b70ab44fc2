/**
 * `ScannerStore` on PostgreSQL, for several scanner replicas sharing one database. Same model as
 * the SQLite store (tables prefixed `scanner_`; a scan row points at a result row; a check-in
 * reuses its predecessor's result), with the outbox (`PostgresOutbox`) on the same pool so a scan
 * and its events commit in one transaction.
 *
 * Concurrency (READ COMMITTED): `recordScan` first upserts the workload row, which locks it, so
 * reports for one workload are serialised and each diffs against the true previous scan; the
 * report id is then re-checked under that lock, and its unique key (`ON CONFLICT DO NOTHING`)
 * settles a race between two workloads claiming one report id. The losing transaction rolls back
 * and answers `duplicate`, exactly as a retry would.
 */
import type { Pool, PoolClient } from 'pg';
import { ConflictError, ErrorCodes, NotFoundError } from '../../errors.js';
import type { DeliveryTarget } from '../../events/deliverer.js';
import type { WorkloadIdentity } from '../../events/cloud-event.js';
import type { DeadLetter, DeadLetterFilter } from '../../events/outbox.js';
import { migratePostgres } from '../../storage/migrations.js';
import { PostgresOutbox } from '../../storage/outbox/postgres-outbox.js';
import { scannerMigrations } from '../../storage/scanner/migrations.js';
import { DetectionStore } from '../../storage/scanner/detections.js';
import { TriggerStore } from '../../storage/scanner/triggers.js';
import { postgresDb } from '../../storage/sql.js';
import { SEVERITIES } from '../../inventory/types.js';
import type { InsecureConfiguration } from '../../inventory/types.js';
import type { FindingSet } from '../finding-sets.js';
import { contentOf } from '../package-matcher.js';
import { ResultCodec, lazyEventContext, rematchTarget } from './result-codec.js';
import type { EncodedContent, StoredBlobs } from './result-codec.js';
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
  RecordScanOutcome,
  RematchTarget,
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

/** bigint columns arrive as strings (pg keeps 64-bit integers exact); ids stay far below 2^53. */
type Id = string;

interface ScanRow extends WorkloadRow {
  id: Id;
  report_id: string;
  kind: ScanKind;
  scan_time: Date;
  received_at: Date;
  inventory_hash: string;
  summary: ScanRecord['summary'];
}

/** The stored-result fields decoding needs (json columns arrive parsed). */
interface PgResultRow {
  inventory_id: Id;
  runs: string;
  insecure_configurations: InsecureConfiguration[];
}

type ScanDetailRow = ScanRow & PgResultRow;

function scanOf(row: ScanRow): ScanRecord {
  return {
    id: Number(row.id),
    reportId: row.report_id,
    workload: identityOf(row),
    scanTime: row.scan_time.toISOString(),
    receivedAt: row.received_at.toISOString(),
    inventoryHash: row.inventory_hash,
    kind: row.kind,
    summary: row.summary,
  };
}

/** Positional parameters for statements assembled from parts. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * SQL condition (over aliases `c` = cluster, `w` = workload) limiting rows to what a reader may
 * see, plus optional workload filters. Every read goes through it.
 */
function visibleWhere(p: Params, visibility: Visibility, filter: WorkloadFilter = {}): string {
  const parts: string[] = [];
  if (visibility.cluster !== '*') parts.push(`c.name = ${p.add(visibility.cluster)}`);
  if (visibility.namespaces !== '*')
    parts.push(`w.namespace = ANY(${p.add([...visibility.namespaces])}::text[])`);
  for (const key of ['namespace', 'pod', 'container'] as const) {
    const value = filter[key];
    if (value !== undefined) parts.push(`w.${key} = ${p.add(value)}`);
  }
  return parts.length === 0 ? 'TRUE' : parts.join(' AND ');
}

const SCAN_COLUMNS = `s.id, s.report_id, s.kind, s.scan_time, s.received_at, s.inventory_hash,
  c.name AS cluster, w.namespace, w.pod, w.container, s.node, s.image, s.image_digest, r.summary`;
const SCAN_FROM = `scanner_scans s
  JOIN scanner_workloads w ON w.id = s.workload_id
  JOIN scanner_clusters c ON c.id = w.cluster_id
  JOIN scanner_results r ON r.id = s.result_id`;

/** Per severity, the sum of one count object of the latest results' summaries. */
const severitySums = (field: 'counts' | 'configurationCounts', prefix: string): string =>
  SEVERITIES.map(
    (s) => `coalesce(sum((r.summary->'${field}'->>'${s}')::int), 0)::int AS "${prefix}${s}"`,
  ).join(',\n  ');

function clusterNotFound(name: string): NotFoundError {
  return new NotFoundError(ErrorCodes.CLUSTER_NOT_FOUND, `cluster ${name} is not registered`);
}

/** Ends the transaction early with a result instead of committing. */
class Rollback<T> {
  constructor(readonly value: T) {}
}

export interface PostgresScannerStoreOptions {
  /** Clock (epoch ms) for created/received times (tests). */
  now?: () => number;
}

export class PostgresScannerStore implements ScannerStore {
  private readonly now: () => Date;
  private readonly codec = new ResultCodec();
  private readonly triggers: TriggerStore;
  readonly detections: DetectionStore;

  /**
   * Creates the tables if needed (under an advisory lock: replicas may start together) on the
   * caller's pool, which it shares with the token and advisory stores and ends itself.
   */
  static async open(pool: Pool, options: PostgresScannerStoreOptions = {}): Promise<PostgresScannerStore> {
    const store = new PostgresScannerStore(pool, await PostgresOutbox.open(pool), options);
    await migratePostgres(
      pool,
      scannerMigrations({ postgres: (client) => store.convertWholeResults(client) }),
    );
    return store;
  }

  /**
   * From the previous layout (inventory and findings as JSON in every result, a per-workload key
   * index): each result becomes blobs and runs in place, keeping its id, in `open`'s transaction.
   */
  private async convertWholeResults(client: PoolClient): Promise<void> {
    for (let after = '0'; ;) {
      const { rows } = await client.query<{ id: Id; inventory: string; vulnerabilities: string }>(
        `SELECT id, inventory::text AS inventory, vulnerabilities::text AS vulnerabilities
         FROM scanner_results WHERE id > $1 ORDER BY id LIMIT 50`,
        [after],
      );
      if (rows.length === 0) break;
      for (const row of rows) {
        const encoded = this.codec.encode({
          inventory: JSON.parse(row.inventory) as StoredInventory,
          vulnerabilities: JSON.parse(row.vulnerabilities) as ScanDetail['vulnerabilities'],
        });
        const stored = await this.storeBlobs(client, encoded);
        await client.query('UPDATE scanner_results SET inventory_id = $1, runs = $2 WHERE id = $3', [
          stored.inventoryId,
          this.codec.runsJson(encoded, stored.setIds),
          row.id,
        ]);
        after = row.id;
      }
    }
  }

  private constructor(
    readonly pool: Pool,
    /** The outbox on this pool: events commit with the scans that caused them. */
    readonly queue: PostgresOutbox,
    options: PostgresScannerStoreOptions,
  ) {
    const clock = options.now ?? Date.now;
    this.now = () => new Date(clock());
    this.triggers = new TriggerStore(postgresDb(pool), clock);
    this.detections = new DetectionStore(postgresDb(pool), (work) =>
      this.transaction((client) =>
        work({
          db: postgresDb(client),
          enqueue: (event, triggerIds) => this.queue.enqueue(client, event, triggerIds),
        }),
      ),
    );
  }

  /** Runs `work` in a transaction; a returned `Rollback` rolls back and yields its value. */
  private async transaction<T>(work: (client: PoolClient) => Promise<T | Rollback<T>>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      if (result instanceof Rollback) {
        await client.query('ROLLBACK');
        return result.value;
      }
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  private async scanDetailOf(row: ScanDetailRow): Promise<ScanDetail> {
    const content = (await this.decoder(this.pool, row))();
    return {
      ...scanOf(row),
      vulnerabilities: content.vulnerabilities,
      insecureConfigurations: content.insecureConfigurations,
      inventory: content.inventory,
    };
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async createCluster(name: string): Promise<ClusterRecord> {
    const { rows } = await this.pool.query<{ created_at: Date }>(
      `INSERT INTO scanner_clusters (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING
       RETURNING created_at`,
      [name, this.now()],
    );
    const [row] = rows;
    if (!row) throw new ConflictError(ErrorCodes.CLUSTER_EXISTS, `cluster ${name} already exists`);
    return { name, createdAt: row.created_at.toISOString() };
  }

  async getCluster(name: string): Promise<ClusterRecord | undefined> {
    const { rows } = await this.pool.query<{ name: string; created_at: Date }>(
      'SELECT name, created_at FROM scanner_clusters WHERE name = $1',
      [name],
    );
    const [row] = rows;
    return row && { name: row.name, createdAt: row.created_at.toISOString() };
  }

  async listClusters(visibility: Visibility): Promise<ClusterListing[]> {
    const p = new Params();
    // The workload count obeys the namespace filter; the cluster filter applies to clusters themselves.
    const where = visibleWhere(p, visibility);
    const { rows } = await this.pool.query<{ name: string; created_at: Date; workloads: number }>(
      `SELECT c.name, c.created_at,
         (SELECT count(*)::int FROM scanner_workloads w WHERE w.cluster_id = c.id AND ${where}) AS workloads
       FROM scanner_clusters c
       WHERE ${visibility.cluster === '*' ? 'TRUE' : `c.name = ${p.add(visibility.cluster)}`}
       ORDER BY c.name`,
      p.values,
    );
    return rows.map((r) => ({ name: r.name, createdAt: r.created_at.toISOString(), workloads: r.workloads }));
  }

  async deleteCluster(name: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('DELETE FROM scanner_clusters WHERE name = $1', [name]);
    return rowCount === 1;
  }

  /** The scan a report id produced in a cluster (by name, or by id inside a transaction). */
  private async reportRef(
    db: Pool | PoolClient,
    cluster: { name: string } | { id: Id },
    reportId: string,
  ): Promise<ReportRef | undefined> {
    const byName = 'name' in cluster;
    const { rows } = await db.query<WorkloadRow & { id: Id; kind: ReportRef['kind'] }>(
      `SELECT s.id, s.kind, c.name AS cluster, w.namespace, w.pod, w.container, s.node, s.image, s.image_digest
       FROM scanner_reports rp
       JOIN scanner_clusters c ON c.id = rp.cluster_id
       JOIN scanner_scans s ON s.id = rp.scan_id
       JOIN scanner_workloads w ON w.id = s.workload_id
       WHERE ${byName ? 'c.name' : 'c.id'} = $1 AND rp.report_id = $2`,
      [byName ? cluster.name : cluster.id, reportId],
    );
    const [row] = rows;
    return row && { scanId: Number(row.id), kind: row.kind, workload: identityOf(row) };
  }

  findReport(cluster: string, reportId: string): Promise<ReportRef | undefined> {
    return this.reportRef(this.pool, { name: cluster }, reportId);
  }

  async lastInventoryHash(workload: WorkloadIdentity): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ inventory_hash: string }>(
      `SELECT s.inventory_hash FROM scanner_workloads w
       JOIN scanner_clusters c ON c.id = w.cluster_id
       JOIN scanner_scans s ON s.id = w.last_scan_id
       WHERE c.name = $1 AND w.namespace = $2 AND w.pod = $3 AND w.container = $4`,
      [workload.cluster, workload.namespace, workload.pod, workload.container ?? ''],
    );
    return rows[0]?.inventory_hash;
  }

  async recordScan(input: RecordScanInput): Promise<RecordScanOutcome> {
    const { workload } = input;
    const encoded = input.content ? this.codec.encode(input.content) : undefined;
    let stored: StoredBlobs | undefined;
    const duplicate = (ref: ReportRef): Rollback<RecordScanOutcome> =>
      new Rollback({ status: 'duplicate', scanId: ref.scanId, kind: ref.kind, workload: ref.workload });
    type Outcome = RecordScanOutcome | 'raced';
    const raced = await this.transaction<Outcome>(async (client) => {
      // KEY SHARE: a concurrent cluster deletion waits for this transaction (or this one sees it gone).
      const cluster = (
        await client.query<{ id: Id }>({
          name: 'scanner-cluster-key-share',
          text: 'SELECT id FROM scanner_clusters WHERE name = $1 FOR KEY SHARE',
          values: [workload.cluster],
        })
      ).rows[0];
      if (!cluster) throw clusterNotFound(workload.cluster);
      const now = this.now();
      // Creates the workload or locks its row: from here on no other report for it interleaves.
      const { rows: upserted } = await client.query<{ id: Id; last_scan_id: Id | null }>({
        name: 'scanner-workload-upsert',
        text: `INSERT INTO scanner_workloads
           (cluster_id, namespace, pod, container, node, image, image_digest, first_seen, last_seen)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (cluster_id, namespace, pod, container) DO UPDATE
           SET node = EXCLUDED.node, image = EXCLUDED.image, image_digest = EXCLUDED.image_digest,
               last_seen = EXCLUDED.last_seen
         RETURNING id, last_scan_id`,
        values: [
          cluster.id,
          workload.namespace,
          workload.pod,
          workload.container ?? '',
          workload.node,
          workload.image,
          workload.imageDigest ?? null,
          now,
        ],
      });
      const { id: workloadId, last_scan_id: lastScanId } = upserted[0] as { id: Id; last_scan_id: Id | null };

      const seen = await this.reportRef(client, { id: cluster.id }, input.reportId);
      if (seen) return duplicate(seen);

      const previous =
        lastScanId === null
          ? undefined
          : (
              await client.query<PgResultRow & { result_id: Id; inventory_hash: string }>({
                name: 'scanner-previous-result',
                text: `SELECT s.result_id, s.inventory_hash, r.inventory_id, r.runs, r.insecure_configurations
                 FROM scanner_scans s JOIN scanner_results r ON r.id = s.result_id WHERE s.id = $1`,
                values: [lastScanId],
              })
            ).rows[0];
      if (!input.content && previous?.inventory_hash !== input.inventoryHash) {
        return new Rollback<RecordScanOutcome>({ status: 'hash-changed' });
      }
      // Blobs the event plan may decode, loaded now: the plan runs synchronously.
      const previousContent = previous && (await this.decoder(client, previous));

      let resultId: Id;
      let inventoryId: Id;
      let content: () => ScanEventContext['content'];
      if (input.content && encoded) {
        const fresh = input.content;
        content = () => fresh;
        stored = await this.storeBlobs(client, encoded);
        inventoryId = stored.inventoryId;
        resultId = await this.insertResult(
          client,
          workloadId,
          inventoryId,
          this.codec.runsJson(encoded, stored.setIds),
          fresh,
        );
      } else {
        // A check-in: the hash matched above, so the previous result exists.
        const prev = previous as NonNullable<typeof previous>;
        resultId = prev.result_id;
        inventoryId = prev.inventory_id;
        content = previousContent as () => ScanContent;
      }

      const kind = input.content ? 'full' : 'check-in';
      const scanId = await this.insertScan(client, {
        workloadId,
        resultId,
        inventoryId,
        reportId: input.reportId,
        kind,
        scanTime: input.scanTime,
        receivedAt: now,
        inventoryHash: input.inventoryHash,
        node: workload.node,
        image: workload.image,
        imageDigest: workload.imageDigest ?? null,
      });
      // Another workload's report with this id committed first: this one is its duplicate.
      const claimed = await client.query({
        name: 'scanner-claim-report',
        text: `INSERT INTO scanner_reports (cluster_id, report_id, scan_id) VALUES ($1, $2, $3)
         ON CONFLICT (cluster_id, report_id) DO NOTHING`,
        values: [cluster.id, input.reportId, scanId],
      });
      if (claimed.rowCount !== 1) return new Rollback<'raced'>('raced');

      const planned = input.events(
        lazyEventContext({
          scanId: Number(scanId),
          checkIn: !input.content,
          triggers: await this.triggersFor(client, cluster.id, workload.namespace),
          previousKeys: () => previousContent?.().findingKeys,
          content,
        }),
      );
      for (const { event, triggerIds } of planned) await this.queue.enqueue(client, event, triggerIds);
      return { status: 'recorded', scanId: Number(scanId), kind, events: planned.length };
    });
    if (raced !== 'raced') {
      if (encoded && stored && raced.status === 'recorded')
        this.codec.rememberStored(encoded, stored.inventoryId, stored.setIds);
      return raced;
    }
    const winner = await this.findReport(workload.cluster, input.reportId);
    // The winner's cluster was deleted in between: nothing of either report remains.
    if (!winner) throw clusterNotFound(workload.cluster);
    return { status: 'duplicate', scanId: winner.scanId, kind: winner.kind, workload: winner.workload };
  }

  /**
   * Inserts the blobs the content needs and the codec does not know to be stored, in digest order
   * (two replicas inserting the same blobs then wait for each other instead of deadlocking).
   */
  private async storeBlobs(client: PoolClient, encoded: EncodedContent): Promise<StoredBlobs> {
    const { inventory } = encoded;
    let inventoryId = inventory.knownId ?? this.codec.inventoryId(inventory.digest);
    if (inventoryId === undefined) {
      const { rows } = await client.query<{ id: Id }>({
        name: 'scanner-inventory-insert',
        text: `WITH ins AS (
             INSERT INTO scanner_inventories (digest, inventory) VALUES ($1, $2)
             ON CONFLICT (digest) DO NOTHING RETURNING id),
           keys AS (
             INSERT INTO scanner_inventory_keys (key, inventory_id)
             SELECT DISTINCT k, ins.id FROM ins, unnest($3::text[]) AS k)
           SELECT id FROM ins`,
        values: [inventory.digest, inventory.json, inventory.packageKeys()],
      });
      inventoryId =
        rows[0]?.id ??
        (
          await client.query<{ id: Id }>({
            name: 'scanner-inventory-id',
            text: 'SELECT id FROM scanner_inventories WHERE digest = $1',
            values: [inventory.digest],
          })
        ).rows[0]?.id;
      if (inventoryId === undefined) throw new Error('inventory blob vanished');
    }
    const setIds = new Map<string, string>();
    const missing: FindingSet[] = [];
    for (const set of encoded.sets) {
      const id = this.codec.setId(set.digest);
      if (id === undefined) missing.push(set);
      else setIds.set(set.digest, id);
    }
    if (missing.length > 0) {
      missing.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
      const digests = missing.map((m) => m.digest);
      await client.query({
        name: 'scanner-sets-insert',
        text: `INSERT INTO scanner_finding_sets (digest, findings)
           SELECT d, f FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(d, f, n) ORDER BY n
           ON CONFLICT (digest) DO NOTHING`,
        values: [digests, missing.map((m) => m.body)],
      });
      const { rows } = await client.query<{ id: Id; digest: string }>({
        name: 'scanner-sets-ids',
        text: 'SELECT id, digest FROM scanner_finding_sets WHERE digest = ANY($1::text[])',
        values: [digests],
      });
      for (const row of rows) setIds.set(row.digest, row.id);
    }
    if (encoded.advisoryPackages.length > 0) {
      const pairs = [...encoded.advisoryPackages].sort((a, b) =>
        a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0,
      );
      await client.query({
        name: 'scanner-advisory-packages-insert',
        text: `INSERT INTO scanner_advisory_packages (advisory_key, package_key)
           SELECT a, p FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(a, p, n) ORDER BY n
           ON CONFLICT DO NOTHING`,
        values: [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
      });
    }
    return { inventoryId, setIds };
  }

  private async insertResult(
    client: PoolClient,
    workloadId: Id,
    inventoryId: Id,
    runsJson: string,
    content: Pick<ScanContent, 'insecureConfigurations' | 'summary'>,
  ): Promise<Id> {
    const { rows } = await client.query<{ id: Id }>({
      name: 'scanner-result-insert',
      text: `INSERT INTO scanner_results (workload_id, inventory_id, runs, insecure_configurations, summary)
       VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      values: [
        workloadId,
        inventoryId,
        runsJson,
        JSON.stringify(content.insecureConfigurations),
        JSON.stringify(content.summary),
      ],
    });
    return (rows[0] as { id: Id }).id;
  }

  /** Loads what decoding a stored result needs; the returned function decodes it (once). */
  private async decoder(db: Pool | PoolClient, row: PgResultRow): Promise<() => ScanContent> {
    const inventory = await this.inventory(db, row.inventory_id);
    const sets = await this.sets(db, this.codec.setIdsOf(row.runs));
    let content: ScanContent | undefined;
    return () => {
      content ??= contentOf(
        inventory,
        this.codec.runs(inventory.packages, row.runs, sets),
        row.insecure_configurations,
      );
      return content;
    };
  }

  private async inventory(db: Pool | PoolClient, id: Id): Promise<StoredInventory> {
    const cached = this.codec.cachedInventory(String(id));
    if (cached) return cached;
    const { rows } = await db.query<{ inventory: string }>({
      name: 'scanner-inventory-get',
      text: 'SELECT inventory FROM scanner_inventories WHERE id = $1',
      values: [id],
    });
    return this.codec.rememberInventory(String(id), (rows[0] as { inventory: string }).inventory);
  }

  private async sets(db: Pool | PoolClient, ids: readonly string[]): Promise<Map<string, FindingSet>> {
    const { found, missing } = this.codec.cachedSets(ids);
    if (missing.length === 0) return found;
    const { rows } = await db.query<{ id: Id; digest: string; findings: string }>({
      name: 'scanner-sets-get',
      text: 'SELECT id, digest, findings FROM scanner_finding_sets WHERE id = ANY($1::bigint[])',
      values: [missing],
    });
    return this.codec.addSets(found, rows);
  }

  /** Inserts a scan and makes it the workload's latest (its result's inventory too). */
  private async insertScan(
    client: PoolClient,
    scan: {
      workloadId: Id;
      resultId: Id;
      inventoryId: Id;
      reportId: string;
      kind: ScanKind;
      scanTime: Date;
      receivedAt: Date;
      inventoryHash: string;
      node: string;
      image: string;
      imageDigest: string | null;
    },
  ): Promise<Id> {
    const { rows } = await client.query<{ id: Id }>({
      name: 'scanner-scan-insert',
      text: `WITH s AS (
         INSERT INTO scanner_scans (workload_id, result_id, report_id, kind, scan_time, received_at,
           inventory_hash, node, image, image_digest)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id)
       UPDATE scanner_workloads w SET last_scan_id = s.id, inventory_id = $11 FROM s WHERE w.id = $1
       RETURNING s.id`,
      values: [
        scan.workloadId,
        scan.resultId,
        scan.reportId,
        scan.kind,
        scan.scanTime,
        scan.receivedAt,
        scan.inventoryHash,
        scan.node,
        scan.image,
        scan.imageDigest,
        scan.inventoryId,
      ],
    });
    return (rows[0] as { id: Id }).id;
  }

  /** Triggers of the cluster covering the namespace. */
  private async triggersFor(
    client: PoolClient,
    clusterId: Id,
    namespace: string,
  ): Promise<ScanEventContext['triggers']> {
    const { rows } = await client.query<{ id: string; every_scan: boolean }>({
      name: 'scanner-triggers-for',
      text: `SELECT id, every_scan FROM scanner_triggers
       WHERE cluster_id = $1
         AND (json_typeof(namespaces) <> 'array'
              OR EXISTS (SELECT 1 FROM json_array_elements_text(namespaces) n WHERE n = $2))
       ORDER BY id`,
      values: [clusterId, namespace],
    });
    return rows.map((t) => ({ id: t.id, everyScan: t.every_scan }));
  }

  async rematchCandidates(keys: readonly string[]): Promise<number[]> {
    const { rows } = await this.pool.query<{ id: Id }>(
      `WITH k AS (SELECT unnest($1::text[]) AS key),
         pk AS (SELECT key FROM k
                UNION SELECT ap.package_key FROM scanner_advisory_packages ap JOIN k ON ap.advisory_key = k.key)
       SELECT DISTINCT w.id FROM pk
       JOIN scanner_inventory_keys ik ON ik.key = pk.key
       JOIN scanner_workloads w ON w.inventory_id = ik.inventory_id
       ORDER BY w.id`,
      [[...keys]],
    );
    return rows.map((r) => Number(r.id));
  }

  async rematchTargets(workloadIds: readonly number[]): Promise<RematchTarget[]> {
    const { rows } = await this.pool.query<
      WorkloadRow &
        PgResultRow & {
          workload_id: Id;
          scan_id: Id;
          scan_time: Date;
          inventory_hash: string;
        }
    >(
      `SELECT w.id AS workload_id, s.id AS scan_id, s.scan_time, s.inventory_hash, c.name AS cluster,
         w.namespace, w.pod, w.container, s.node, s.image, s.image_digest,
         r.inventory_id, r.runs, r.insecure_configurations
       FROM scanner_workloads w
       JOIN scanner_clusters c ON c.id = w.cluster_id
       JOIN scanner_scans s ON s.id = w.last_scan_id
       JOIN scanner_results r ON r.id = s.result_id
       WHERE w.id = ANY($1::bigint[])
       ORDER BY w.id`,
      [[...workloadIds]],
    );
    // Every set of the batch in one query.
    const sets = await this.sets(this.pool, [...new Set(rows.flatMap((r) => this.codec.setIdsOf(r.runs)))]);
    const targets: RematchTarget[] = [];
    for (const row of rows) {
      const inventory = await this.inventory(this.pool, row.inventory_id);
      targets.push(
        rematchTarget({
          workloadId: Number(row.workload_id),
          workload: identityOf(row),
          scanId: Number(row.scan_id),
          scanTime: row.scan_time.toISOString(),
          inventoryHash: row.inventory_hash,
          inventory,
          runs: this.codec.runs(inventory.packages, row.runs, sets),
          insecureConfigurations: row.insecure_configurations,
        }),
      );
    }
    return targets;
  }

  async recordRematch(input: RecordRematchInput): Promise<RecordRematchOutcome> {
    const encoded = this.codec.encode(input.content);
    let stored: StoredBlobs | undefined;
    const outcome = await this.transaction<RecordRematchOutcome>(async (client) => {
      // FOR UPDATE: a report for this workload waits, so "still the latest scan" holds until commit.
      const { rows } = await client.query<
        PgResultRow & {
          cluster_id: Id;
          namespace: string;
          last_scan_id: Id;
          scan_time: Date;
          inventory_hash: string;
          node: string;
          image: string;
          image_digest: string | null;
        }
      >({
        name: 'scanner-rematch-base',
        text: `SELECT w.cluster_id, w.namespace, w.last_scan_id, s.scan_time, s.inventory_hash, s.node, s.image,
           s.image_digest, r.inventory_id, r.runs, r.insecure_configurations
         FROM scanner_workloads w
         JOIN scanner_scans s ON s.id = w.last_scan_id
         JOIN scanner_results r ON r.id = s.result_id
         WHERE w.id = $1
         FOR UPDATE OF w`,
        values: [input.workloadId],
      });
      const [base] = rows;
      if (base === undefined || Number(base.last_scan_id) !== input.basedOnScanId) {
        return new Rollback<RecordRematchOutcome>({ status: 'stale' });
      }
      const previousContent = await this.decoder(client, base);
      const workloadId = String(input.workloadId);
      stored = await this.storeBlobs(client, encoded);
      const resultId = await this.insertResult(
        client,
        workloadId,
        stored.inventoryId,
        this.codec.runsJson(encoded, stored.setIds),
        input.content,
      );
      // Never before the scan it re-derives, or `latestScans` would still pick that one.
      const scanTime = new Date(Math.max(input.scanTime.getTime(), base.scan_time.getTime()));
      const scanId = await this.insertScan(client, {
        workloadId,
        resultId,
        inventoryId: stored.inventoryId,
        reportId: `rematch:${input.basedOnScanId}`,
        kind: 'rematch',
        scanTime,
        receivedAt: this.now(),
        inventoryHash: base.inventory_hash,
        node: base.node,
        image: base.image,
        imageDigest: base.image_digest,
      });
      const planned = input.events(
        lazyEventContext({
          scanId: Number(scanId),
          checkIn: false,
          triggers: await this.triggersFor(client, base.cluster_id, base.namespace),
          previousKeys: () => previousContent().findingKeys,
          content: () => input.content,
        }),
      );
      for (const { event, triggerIds } of planned) await this.queue.enqueue(client, event, triggerIds);
      return { status: 'recorded', scanId: Number(scanId), events: planned.length };
    });
    if (stored && outcome.status === 'recorded')
      this.codec.rememberStored(encoded, stored.inventoryId, stored.setIds);
    return outcome;
  }

  async rematchCursor(): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ value: string }>(
      `SELECT value FROM scanner_meta WHERE key = 'rematch_cursor'`,
    );
    return rows[0] === undefined ? undefined : Number(rows[0].value);
  }

  async setRematchCursor(importId: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO scanner_meta (key, value) VALUES ('rematch_cursor', $1)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
      [String(importId)],
    );
  }

  async latestScans(
    cluster: string,
    visibility: Visibility,
    filter: WorkloadFilter & { pod: string },
    at: Date,
  ): Promise<ScanDetail[]> {
    const p = new Params();
    const where = visibleWhere(p, visibility, filter);
    const { rows } = await this.pool.query<ScanDetailRow>(
      `SELECT ${SCAN_COLUMNS}, r.inventory_id, r.runs, r.insecure_configurations
       FROM scanner_workloads w
       JOIN scanner_clusters c ON c.id = w.cluster_id
       JOIN LATERAL (
         SELECT * FROM scanner_scans s2 WHERE s2.workload_id = w.id AND s2.scan_time <= ${p.add(at)}
         ORDER BY s2.scan_time DESC, s2.id DESC LIMIT 1) s ON TRUE
       JOIN scanner_results r ON r.id = s.result_id
       WHERE c.name = ${p.add(cluster)} AND ${where}
       ORDER BY w.container`,
      p.values,
    );
    return Promise.all(rows.map((row) => this.scanDetailOf(row)));
  }

  async listWorkloads(visibility: Visibility, filter: WorkloadFilter, page: Page): Promise<WorkloadRecord[]> {
    const p = new Params();
    const where = visibleWhere(p, visibility, filter);
    const { rows } = await this.pool.query<
      WorkloadRow & {
        first_seen: Date;
        last_seen: Date;
        scan_id: Id | null;
        scan_time: Date | null;
        kind: ScanKind | null;
        summary: ScanRecord['summary'] | null;
      }
    >(
      `SELECT c.name AS cluster, w.namespace, w.pod, w.container, w.node, w.image, w.image_digest,
         w.first_seen, w.last_seen, s.id AS scan_id, s.scan_time, s.kind, r.summary
       FROM scanner_workloads w
       JOIN scanner_clusters c ON c.id = w.cluster_id
       LEFT JOIN scanner_scans s ON s.id = w.last_scan_id
       LEFT JOIN scanner_results r ON r.id = s.result_id
       WHERE ${where}
       ORDER BY c.name, w.namespace, w.pod, w.container
       LIMIT ${p.add(page.limit)} OFFSET ${p.add(page.offset)}`,
      p.values,
    );
    return rows.map((r) => ({
      workload: identityOf(r),
      firstSeen: r.first_seen.toISOString(),
      lastSeen: r.last_seen.toISOString(),
      ...(r.scan_id === null
        ? {}
        : {
            lastScan: {
              id: Number(r.scan_id),
              scanTime: (r.scan_time as Date).toISOString(),
              kind: r.kind as ScanKind,
              summary: r.summary as ScanRecord['summary'],
            },
          }),
    }));
  }

  async listScans(visibility: Visibility, filter: WorkloadFilter, page: Page): Promise<ScanRecord[]> {
    const p = new Params();
    const where = visibleWhere(p, visibility, filter);
    const { rows } = await this.pool.query<ScanRow>(
      `SELECT ${SCAN_COLUMNS} FROM ${SCAN_FROM} WHERE ${where}
       ORDER BY s.scan_time DESC, s.id DESC LIMIT ${p.add(page.limit)} OFFSET ${p.add(page.offset)}`,
      p.values,
    );
    return rows.map(scanOf);
  }

  async getScan(id: number, visibility: Visibility): Promise<ScanDetail | undefined> {
    const p = new Params();
    const where = visibleWhere(p, visibility);
    const { rows } = await this.pool.query<ScanDetailRow>(
      `SELECT ${SCAN_COLUMNS}, r.inventory_id, r.runs, r.insecure_configurations
       FROM ${SCAN_FROM} WHERE s.id = ${p.add(id)} AND ${where}`,
      p.values,
    );
    return rows[0] && this.scanDetailOf(rows[0]);
  }

  async imageScans(visibility: Visibility, query: ImageQuery, limit: number): Promise<ScanRecord[]> {
    const p = new Params();
    const where = visibleWhere(p, visibility);
    const { rows } = await this.pool.query<ScanRow>(
      `SELECT ${SCAN_COLUMNS}
       FROM scanner_workloads w
       JOIN scanner_clusters c ON c.id = w.cluster_id
       JOIN scanner_scans s ON s.id = w.last_scan_id
       JOIN scanner_results r ON r.id = s.result_id
       WHERE (w.image = ${p.add(query.image)} OR w.image_digest = ${p.add(query.digest ?? null)}) AND ${where}
       ORDER BY s.scan_time DESC, s.id DESC LIMIT ${p.add(limit)}`,
      p.values,
    );
    return rows.map(scanOf);
  }

  async summary(visibility: Visibility, filter: { namespace?: string }): Promise<NamespaceSummary[]> {
    const p = new Params();
    const where = visibleWhere(p, visibility, filter);
    const anyVulnerability = SEVERITIES.map((s) => `coalesce((r.summary->'counts'->>'${s}')::int, 0)`).join(
      ' + ',
    );
    const { rows } = await this.pool.query<Record<string, string | number>>(
      `SELECT c.name AS cluster, w.namespace, count(*)::int AS workloads,
         (count(*) FILTER (WHERE ${anyVulnerability} > 0))::int AS vulnerable,
         (count(*) FILTER (WHERE r.summary->'compliance'->>'passed' = 'true'))::int AS compliant,
         ${severitySums('counts', 'v_')},
         ${severitySums('configurationCounts', 'c_')}
       FROM scanner_workloads w
       JOIN scanner_clusters c ON c.id = w.cluster_id
       JOIN scanner_scans s ON s.id = w.last_scan_id
       JOIN scanner_results r ON r.id = s.result_id
       WHERE ${where}
       GROUP BY c.name, w.namespace
       ORDER BY c.name, w.namespace`,
      p.values,
    );
    const counts = (row: Record<string, string | number>, prefix: string): NamespaceSummary['counts'] =>
      Object.fromEntries(
        SEVERITIES.map((s) => [s, row[`${prefix}${s}`] as number]),
      ) as NamespaceSummary['counts'];
    return rows.map((row) => ({
      cluster: row.cluster as string,
      namespace: row.namespace as string,
      workloads: row.workloads as number,
      vulnerableWorkloads: row.vulnerable as number,
      compliantWorkloads: row.compliant as number,
      counts: counts(row, 'v_'),
      configurationCounts: counts(row, 'c_'),
    }));
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

  listDeadLetters(filter: DeadLetterFilter & { limit?: number }): Promise<DeadLetter[]> {
    return this.queue.listDeadLetters(filter);
  }

  replayDeadLetters(filter: DeadLetterFilter): Promise<number> {
    return this.queue.replayDeadLetters(filter);
  }

  /** The pool is the caller's to end. */
  async close(): Promise<void> {}
}
