/**
 * Recording a scan (`recordScan`), for both engines: the workload, its result (or, for a check-in,
 * the previous one), the scan, the report id and the scan's events, in one transaction.
 *
 * Concurrency: the workload row is upserted first, which on PostgreSQL locks it (SQLite's writer
 * holds the whole database), so reports for one workload are serialised and each diffs against
 * the true previous scan; the report id is then checked under that lock, and its unique key
 * (`ON CONFLICT DO NOTHING`) settles a race between two workloads on two replicas claiming one
 * report id: the loser rolls back and answers `duplicate`, exactly as a retry would.
 */
import { ErrorCodes, NotFoundError } from '../../errors.js';
import type { ResultCodec, StoredBlobs } from '../../scanner/store/result-codec.js';
import { lazyEventContext } from '../../scanner/store/result-codec.js';
import type {
  PlannedEvent,
  RecordScanInput,
  RecordScanOutcome,
  ReportRef,
  ScanContent,
  ScanEventContext,
  ScanKind,
} from '../../scanner/store/scanner-store.js';
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

export class ScanWriter {
  constructor(
    private readonly transaction: InTransaction,
    private readonly codec: ResultCodec,
    private readonly results: ResultStore,
    private readonly reads: ScanReads,
    /** Epoch ms. */
    private readonly now: () => number,
  ) {}

  async recordScan(input: RecordScanInput): Promise<RecordScanOutcome> {
    const { workload } = input;
    // Encoding (hashing, JSON) happens before the transaction.
    const encoded = input.content ? this.codec.encode(input.content) : undefined;
    let stored: StoredBlobs | undefined;
    const duplicate = (ref: ReportRef): Rollback<RecordScanOutcome> =>
      new Rollback({ status: 'duplicate', scanId: ref.scanId, kind: ref.kind, workload: ref.workload });
    const outcome = await this.transaction<RecordScanOutcome | 'raced'>(async ({ db, enqueue }) => {
      // KEY SHARE: a concurrent cluster deletion waits for this transaction (or this one sees it gone).
      const cluster = await db.get<{ id: number | string }>(
        `SELECT id FROM scanner_clusters WHERE name = $1${db.locking('FOR KEY SHARE')}`,
        [workload.cluster],
      );
      if (!cluster) throw clusterNotFound(workload.cluster);
      const clusterId = int(cluster.id);
      const now = new Date(this.now());
      // Creates the workload or locks its row: from here on no other report for it interleaves.
      const upserted = (await db.get<{ id: number | string; last_scan_id: number | string | null }>(
        `INSERT INTO scanner_workloads
           (cluster_id, namespace, pod, container, node, image, image_digest, first_seen, last_seen)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (cluster_id, namespace, pod, container) DO UPDATE
           SET node = excluded.node, image = excluded.image, image_digest = excluded.image_digest,
               last_seen = excluded.last_seen
         RETURNING id, last_scan_id`,
        [
          clusterId,
          workload.namespace,
          workload.pod,
          workload.container ?? '',
          workload.node,
          workload.image,
          workload.imageDigest ?? null,
          now,
        ],
      )) as { id: number | string; last_scan_id: number | string | null };
      const workloadId = int(upserted.id);

      const seen = await this.reads.report(db, { id: clusterId }, input.reportId);
      if (seen) return duplicate(seen);

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
      let resultId: number;
      let inventoryId: number;
      let content: (() => ScanEventContext['content']) | undefined;
      if (input.content && encoded) {
        const fresh = input.content;
        content = () => fresh;
        stored = await this.results.storeBlobs(db, encoded);
        inventoryId = Number(stored.inventoryId);
        resultId = await this.results.insert(
          db,
          workloadId,
          stored.inventoryId,
          this.codec.runsJson(encoded, stored.setIds),
          fresh,
        );
      } else {
        // A check-in: the hash matched above, so the previous result exists.
        const prev = previous as NonNullable<typeof previous>;
        resultId = int(prev.result_id);
        inventoryId = int(prev.inventory_id);
      }

      const kind = input.content ? 'full' : 'check-in';
      const scanId = await insertScan(db, {
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
      const claimed = await db.run(
        `INSERT INTO scanner_reports (cluster_id, report_id, scan_id) VALUES ($1, $2, $3)
         ON CONFLICT (cluster_id, report_id) DO NOTHING`,
        [clusterId, input.reportId, scanId],
      );
      if (claimed !== 1) return new Rollback<'raced'>('raced');

      const planned = await planEvents(
        input.events,
        {
          scanId,
          checkIn: !input.content,
          triggers: await triggersFor(db, clusterId, workload.namespace),
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
