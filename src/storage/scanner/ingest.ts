/**
 * Recording a scan (`recordScan`), for both engines: the workload, its result (or, for a check-in,
 * the previous one), the scan, the report id and the scan's events, in one transaction.
 *
 * Concurrency: the workload row is upserted first, which on PostgreSQL locks it (SQLite's writer
 * holds the whole database), so reports for one workload are serialised and each diffs against
 * the true previous scan; the report id is then checked under that lock, and its unique key
 * (`ON CONFLICT DO NOTHING`) settles a race between two workloads on two replicas claiming one
 * report id: the loser rolls back and answers `duplicate`, exactly as a retry would.
 *
 * On PostgreSQL a check-in is first tried as one statement outside a transaction (`CHECK_IN`):
 * one round trip instead of a dozen, for what most reports of a steady fleet are.
 */
import { ErrorCodes, NotFoundError } from '../../errors.js';
import type { ResultCodec, StoredBlobs } from './result-codec.js';
import { lazyEventContext } from './result-codec.js';
import type {
  PlannedEvent,
  RecordScanInput,
  RecordScanOutcome,
  ReportRef,
  ScanContent,
  ScanEventContext,
  ScanKind,
} from '../../scanner/scanner-store.js';
import { int } from '../sql.js';
import type { SqlDb } from '../sql.js';
import type { ResultColumns, ResultStore } from './results.js';
import type { ScanReads } from './scans.js';
import { Rollback } from './transaction.js';
import type { InTransaction } from './transaction.js';

export function clusterNotFound(name: string): NotFoundError {
  return new NotFoundError(ErrorCodes.CLUSTER_NOT_FOUND, `cluster ${name} is not registered`);
}

/** Thrown inside an event plan that reaches for previous findings not loaded yet. */
class NotLoaded {}

/**
 * Runs the (pure, synchronous) event plan. The previous result's blobs are loaded only if the plan
 * asks for them (most plans, e.g. without triggers, never do): the plan first runs without them,
 * and a plan that reaches for them runs again once they are loaded.
 */
export async function planEvents(
  events: (context: ScanEventContext) => readonly PlannedEvent[],
  parts: {
    scanId: number;
    checkIn: boolean;
    triggers: ScanEventContext['triggers'];
    /** This scan's content; absent: the previous result's (a check-in). */
    content?: () => ScanEventContext['content'];
  },
  /** Loads the previous result; absent on a workload's first scan. */
  loadPrevious: (() => Promise<() => ScanContent>) | undefined,
): Promise<readonly PlannedEvent[]> {
  const previous: { decode?: () => ScanContent } = {};
  const loaded = (): ScanContent => {
    if (!previous.decode) throw new NotLoaded();
    return previous.decode();
  };
  const context = (): ScanEventContext =>
    lazyEventContext({
      scanId: parts.scanId,
      checkIn: parts.checkIn,
      triggers: parts.triggers,
      previousKeys: () => (loadPrevious ? loaded().findingKeys : undefined),
      content: parts.content ?? loaded,
    });
  try {
    return events(context());
  } catch (e) {
    if (!(e instanceof NotLoaded) || !loadPrevious) throw e;
  }
  previous.decode = await loadPrevious();
  return events(context());
}

/** Triggers of the cluster covering the namespace. */
export async function triggersFor(
  db: SqlDb,
  clusterId: number,
  namespace: string,
): Promise<ScanEventContext['triggers']> {
  const rows = await db.all<{ id: string; namespaces: unknown; every_scan: number | boolean }>(
    'SELECT id, namespaces, every_scan FROM scanner_triggers WHERE cluster_id = $1 ORDER BY id',
    [clusterId],
  );
  return rows
    .filter((t) => {
      const namespaces = db.json<string[] | '*'>(t.namespaces);
      return namespaces === '*' || namespaces.includes(namespace);
    })
    .map((t) => ({ id: t.id, everyScan: t.every_scan === true || t.every_scan === 1 }));
}

/** A new scan row, made the workload's latest (its result's inventory too); its id. */
export async function insertScan(
  db: SqlDb,
  scan: {
    workloadId: number;
    resultId: number;
    inventoryId: number;
    reportId: string;
    kind: ScanKind;
    scanTime: Date;
    receivedAt: Date;
    inventoryHash: string;
    node: string;
    image: string;
    imageDigest: string | null;
  },
): Promise<number> {
  // One statement on PostgreSQL: the scan and the workload's pointer to it in one round trip.
  const id = await db.insertThen(
    `INSERT INTO scanner_scans (workload_id, result_id, report_id, kind, scan_time, received_at,
       inventory_hash, node, image, image_digest)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
    `UPDATE scanner_workloads SET last_scan_id = inserted.id, inventory_id = $11
     FROM inserted WHERE scanner_workloads.id = $1`,
    [
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
  );
  if (id === undefined) throw new Error('scan row not inserted');
  return id;
}

/**
 * Whether the plan lets a check-in pass without events when every trigger covering its namespace
 * skips unchanged scans (the plan is pure: asked once with such a trigger, reading no findings).
 */
function quietCheckIn(events: RecordScanInput['events']): boolean {
  const unread = (): never => {
    throw new NotLoaded();
  };
  try {
    const context = lazyEventContext({
      scanId: 0,
      checkIn: true,
      triggers: [{ id: '', everyScan: false }],
      previousKeys: unread,
      content: unread,
    });
    return events(context).length === 0;
  } catch (e) {
    if (e instanceof NotLoaded) return false;
    throw e;
  }
}

/**
 * PostgreSQL: a check-in in one statement, when nothing needs the general transaction: the
 * workload's last scan has this inventory hash, the report id is new, and no trigger covering the
 * namespace wants every scan. It locks the cluster (KEY SHARE) and the workload row (FOR UPDATE, in
 * that order, as the transaction does), writes the scan, moves the workload to it and claims the
 * report id; if any condition fails it writes nothing, and the last columns (read from the
 * statement's snapshot) tell whether that is a plain `hash-changed`. A workload row updated by a
 * concurrent report is re-checked against its new version, whose last scan is then not the one
 * joined here, so it writes nothing; a report id claimed concurrently fails the whole statement on
 * the unique key. Parameters: cluster, namespace, pod, container, hash, report id, scan time,
 * received at, node, image, image digest.
 */
const CHECK_IN = `
WITH cur AS (
  SELECT c.id AS cluster_id, w.id AS workload_id, s.result_id, r.inventory_id
  FROM scanner_clusters c
  JOIN scanner_workloads w ON w.cluster_id = c.id
  JOIN scanner_scans s ON s.id = w.last_scan_id
  JOIN scanner_results r ON r.id = s.result_id
  WHERE c.name = $1 AND w.namespace = $2 AND w.pod = $3 AND w.container = $4
    AND s.inventory_hash = $5
    AND NOT EXISTS (SELECT 1 FROM scanner_reports rp WHERE rp.cluster_id = c.id AND rp.report_id = $6)
    AND NOT EXISTS (SELECT 1 FROM scanner_triggers t WHERE t.cluster_id = c.id AND t.every_scan
      AND (t.namespaces::jsonb = '"*"'::jsonb OR t.namespaces::jsonb ? $2))
  FOR KEY SHARE OF c FOR UPDATE OF w
), scan AS (
  INSERT INTO scanner_scans (workload_id, result_id, report_id, kind, scan_time, received_at,
    inventory_hash, node, image, image_digest)
  SELECT workload_id, result_id, $6, 'check-in', $7, $8, $5, $9, $10, $11 FROM cur
  RETURNING id
), moved AS (
  UPDATE scanner_workloads w SET node = $9, image = $10, image_digest = $11, last_seen = $8,
    last_scan_id = scan.id, inventory_id = cur.inventory_id
  FROM cur, scan WHERE w.id = cur.workload_id
), claimed AS (
  INSERT INTO scanner_reports (cluster_id, report_id, scan_id) SELECT cur.cluster_id, $6, scan.id FROM cur, scan
)
SELECT (SELECT id FROM scan) AS scan_id,
  EXISTS (SELECT 1 FROM scanner_clusters WHERE name = $1) AS cluster_known,
  EXISTS (SELECT 1 FROM scanner_reports rp JOIN scanner_clusters c ON c.id = rp.cluster_id
          WHERE c.name = $1 AND rp.report_id = $6) AS report_seen,
  (SELECT s.inventory_hash FROM scanner_clusters c
     JOIN scanner_workloads w ON w.cluster_id = c.id JOIN scanner_scans s ON s.id = w.last_scan_id
   WHERE c.name = $1 AND w.namespace = $2 AND w.pod = $3 AND w.container = $4) AS last_hash`;

/** pg's unique_violation and deadlock_detected: the general transaction then decides. */
const RETRY_IN_TRANSACTION = new Set(['23505', '40P01']);

/** A result to insert with its scan. */
interface NewResult {
  runsJson: string;
  content: Pick<ScanContent, 'insecureConfigurations' | 'summary'>;
}

/** What `writeScan` writes besides the result. */
interface ScanRow {
  clusterId: number;
  workloadId: number;
  inventoryId: number;
  reportId: string;
  kind: ScanKind;
  scanTime: Date;
  receivedAt: Date;
  inventoryHash: string;
  node: string;
  image: string;
  imageDigest: string | null;
}

/**
 * PostgreSQL's `writeScan` in one statement: the result (new, or an existing one's id as $12), the
 * scan, the workload moved to it and the report id claimed (`ON CONFLICT DO NOTHING`: `claimed` is
 * false when another report holds it).
 */
function writeScanStatement(newResult: boolean): string {
  const result = newResult
    ? `INSERT INTO scanner_results (workload_id, inventory_id, runs, insecure_configurations, summary)
       VALUES ($1, $2, $12, $13, $14) RETURNING id`
    : 'SELECT $12::bigint AS id';
  return `WITH result AS (${result}), scan AS (
      INSERT INTO scanner_scans (workload_id, result_id, report_id, kind, scan_time, received_at,
        inventory_hash, node, image, image_digest)
      SELECT $1, result.id, $4, $5, $6, $7, $8, $9, $10, $11 FROM result RETURNING id
    ), moved AS (
      UPDATE scanner_workloads w SET last_scan_id = scan.id, inventory_id = $2 FROM scan WHERE w.id = $1
    ), claimed AS (
      INSERT INTO scanner_reports (cluster_id, report_id, scan_id) SELECT $3, $4, scan.id FROM scan
      ON CONFLICT (cluster_id, report_id) DO NOTHING RETURNING scan_id
    )
    SELECT scan.id AS scan_id, EXISTS (SELECT 1 FROM claimed) AS claimed FROM scan`;
}
const WRITE_SCAN_NEW_RESULT = writeScanStatement(true);
const WRITE_SCAN_OLD_RESULT = writeScanStatement(false);

/**
 * Writes a scan: its result unless it reuses one (a check-in), the scan made the workload's latest,
 * and its report id claimed. One statement on PostgreSQL (a round trip instead of four); on SQLite,
 * whose statements cannot write in a WITH clause and cost no round trip, one statement each.
 */
export async function writeScan(
  db: SqlDb,
  results: ResultStore,
  result: NewResult | { id: number },
  scan: ScanRow,
): Promise<{ scanId: number; claimed: boolean }> {
  if (db.engine === 'postgres') {
    const common = [
      scan.workloadId,
      scan.inventoryId,
      scan.clusterId,
      scan.reportId,
      scan.kind,
      scan.scanTime,
      scan.receivedAt,
      scan.inventoryHash,
      scan.node,
      scan.image,
      scan.imageDigest,
    ];
    const [sql, params] =
      'id' in result
        ? [WRITE_SCAN_OLD_RESULT, [...common, result.id]]
        : [
            WRITE_SCAN_NEW_RESULT,
            [
              ...common,
              result.runsJson,
              JSON.stringify(result.content.insecureConfigurations),
              JSON.stringify(result.content.summary),
            ],
          ];
    const row = (await db.get<{ scan_id: number | string; claimed: boolean }>(sql, params)) as {
      scan_id: number | string;
      claimed: boolean;
    };
    return { scanId: int(row.scan_id), claimed: row.claimed };
  }
  const resultId =
    'id' in result
      ? result.id
      : await results.insert(db, scan.workloadId, String(scan.inventoryId), result.runsJson, result.content);
  const scanId = await insertScan(db, { ...scan, resultId });
  const claimed = await db.run(
    `INSERT INTO scanner_reports (cluster_id, report_id, scan_id) VALUES ($1, $2, $3)
     ON CONFLICT (cluster_id, report_id) DO NOTHING`,
    [scan.clusterId, scan.reportId, scanId],
  );
  return { scanId, claimed: claimed === 1 };
}

export class ScanWriter {
  constructor(
    private readonly transaction: InTransaction,
    private readonly codec: ResultCodec,
    private readonly results: ResultStore,
    private readonly reads: ScanReads,
    /** Epoch ms. */
    private readonly now: () => number,
  ) {}

  /**
   * PostgreSQL's one-statement check-in (`CHECK_IN`): its outcome, or undefined when the general
   * transaction must decide (unknown cluster, a seen report id, a trigger, a race).
   */
  private async checkInAtOnce(input: RecordScanInput): Promise<RecordScanOutcome | undefined> {
    const { workload } = input;
    let row: {
      scan_id: string | null;
      cluster_known: boolean;
      report_seen: boolean;
      last_hash: string | null;
    };
    try {
      row = (await this.reads.db.get<typeof row>(CHECK_IN, [
        workload.cluster,
        workload.namespace,
        workload.pod,
        workload.container ?? '',
        input.inventoryHash,
        input.reportId,
        input.scanTime,
        new Date(this.now()),
        workload.node,
        workload.image,
        workload.imageDigest ?? null,
      ])) as typeof row;
    } catch (e) {
      if (RETRY_IN_TRANSACTION.has((e as { code?: string }).code ?? '')) return undefined;
      throw e;
    }
    if (row.scan_id !== null)
      return { status: 'recorded', scanId: int(row.scan_id), kind: 'check-in', events: 0 };
    if (row.cluster_known && !row.report_seen && row.last_hash !== input.inventoryHash)
      return { status: 'hash-changed' };
    return undefined;
  }

  /**
   * A check-in on PostgreSQL tries `checkInAtOnce` first. The transaction (restructured for fewer
   * round trips, 2026-12-07): one statement for cluster lock + workload upsert + report-id lookup +
   * "has triggers", the previous scan if any, the blobs (`storeBlobs`), one `writeScan`, the
   * triggers only if the cluster has some, the events. Over 120 lines: the steps are one
   * transaction's, in order, sharing its reads; split up they would pass those reads around.
   */
  async recordScan(input: RecordScanInput): Promise<RecordScanOutcome> {
    if (!input.content && this.reads.db.engine === 'postgres' && quietCheckIn(input.events)) {
      const outcome = await this.checkInAtOnce(input);
      if (outcome) return outcome;
    }
    const { workload } = input;
    // Encoding (hashing, JSON) happens before the transaction.
    const encoded = input.content ? this.codec.encode(input.content) : undefined;
    let stored: StoredBlobs | undefined;
    const duplicate = (ref: ReportRef): Rollback<RecordScanOutcome> =>
      new Rollback({ status: 'duplicate', scanId: ref.scanId, kind: ref.kind, workload: ref.workload });
    const outcome = await this.transaction<RecordScanOutcome | 'raced'>(async ({ db, enqueue }) => {
      const now = new Date(this.now());
      // Creates the workload or locks its row: from here on no other report for it interleaves.
      // One statement also takes the cluster (KEY SHARE: a concurrent deletion waits for this
      // transaction, or this one sees it gone), looks up the report id and whether the cluster has
      // triggers. The report id is read from the statement's snapshot: one claimed concurrently is
      // caught by its unique key below, and answered as the same duplicate.
      const upserted = await db.get<{
        id: number | string;
        cluster_id: number | string;
        last_scan_id: number | string | null;
        seen_scan_id: number | string | null;
        has_triggers: number | boolean;
      }>(
        `WITH c AS (SELECT id FROM scanner_clusters WHERE name = $1${db.locking('FOR KEY SHARE')})
         INSERT INTO scanner_workloads
           (cluster_id, namespace, pod, container, node, image, image_digest, first_seen, last_seen)
         SELECT c.id, $2, $3, $4, $5, $6, $7, $8, $8 FROM c WHERE true
         ON CONFLICT (cluster_id, namespace, pod, container) DO UPDATE
           SET node = excluded.node, image = excluded.image, image_digest = excluded.image_digest,
               last_seen = excluded.last_seen
         RETURNING id, cluster_id, last_scan_id,
           (SELECT rp.scan_id FROM scanner_reports rp
            WHERE rp.cluster_id = scanner_workloads.cluster_id AND rp.report_id = $9) AS seen_scan_id,
           EXISTS (SELECT 1 FROM scanner_triggers t
                   WHERE t.cluster_id = scanner_workloads.cluster_id) AS has_triggers`,
        [
          workload.cluster,
          workload.namespace,
          workload.pod,
          workload.container ?? '',
          workload.node,
          workload.image,
          workload.imageDigest ?? null,
          now,
          input.reportId,
        ],
      );
      if (!upserted) throw clusterNotFound(workload.cluster);
      const clusterId = int(upserted.cluster_id);
      const workloadId = int(upserted.id);

      if (upserted.seen_scan_id !== null) {
        const seen = await this.reads.report(db, { id: clusterId }, input.reportId);
        if (seen) return duplicate(seen);
      }

      const previous =
        upserted.last_scan_id === null
          ? undefined
          : await db.get<ResultColumns & { result_id: number | string; inventory_hash: string }>(
              `SELECT s.result_id, s.inventory_hash, r.inventory_id, r.runs, r.insecure_configurations
               FROM scanner_scans s JOIN scanner_results r ON r.id = s.result_id WHERE s.id = $1`,
              [int(upserted.last_scan_id)],
            );
      if (!input.content && previous?.inventory_hash !== input.inventoryHash) {
        return new Rollback<RecordScanOutcome>({ status: 'hash-changed' });
      }
      let result: NewResult | { id: number };
      let inventoryId: number;
      let content: (() => ScanEventContext['content']) | undefined;
      if (input.content && encoded) {
        const fresh = input.content;
        content = () => fresh;
        stored = await this.results.storeBlobs(db, encoded);
        inventoryId = Number(stored.inventoryId);
        result = { runsJson: this.codec.runsJson(encoded, stored.setIds), content: fresh };
      } else {
        // A check-in: the hash matched above, so the previous result exists.
        const prev = previous as NonNullable<typeof previous>;
        result = { id: int(prev.result_id) };
        inventoryId = int(prev.inventory_id);
      }

      const kind = input.content ? 'full' : 'check-in';
      const { scanId, claimed } = await writeScan(db, this.results, result, {
        clusterId,
        workloadId,
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
      if (!claimed) return new Rollback<'raced'>('raced');

      const planned = await planEvents(
        input.events,
        {
          scanId,
          checkIn: !input.content,
          triggers:
            upserted.has_triggers === 0 || upserted.has_triggers === false
              ? []
              : await triggersFor(db, clusterId, workload.namespace),
          ...(content ? { content } : {}),
        },
        previous && (() => this.results.decoder(db, previous)),
      );
      for (const { event, triggerIds } of planned) await enqueue(event, triggerIds);
      return { status: 'recorded', scanId, kind, events: planned.length };
    });
    if (outcome !== 'raced') {
      if (encoded && stored && outcome.status === 'recorded')
        this.codec.rememberStored(encoded, stored.inventoryId, stored.setIds);
      return outcome;
    }
    const winner = await this.reads.report(this.reads.db, { name: workload.cluster }, input.reportId);
    // The winner's cluster was deleted in between: nothing of either report remains.
    if (!winner) throw clusterNotFound(workload.cluster);
    return { status: 'duplicate', scanId: winner.scanId, kind: winner.kind, workload: winner.workload };
  }
}
