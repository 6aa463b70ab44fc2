/**
 * Reading workloads and scans (`scanner_workloads`, `scanner_scans`, `scanner_reports`) as a
 * reader may see them, for both engines. Writes are in `ingest.ts` and `rematch.ts`.
 */
import type { WorkloadIdentity } from '../../events/cloud-event.js';
import { SEVERITIES } from '../../inventory/types.js';
import type {
  ImageQuery,
  NamespaceSummary,
  ReportRef,
  ScanDetail,
  ScanKind,
  ScanRecord,
  WorkloadRecord,
} from '../../scanner/scanner-store.js';
import { identityOf } from './workload-row.js';
import type { WorkloadRow } from './workload-row.js';
import { int, isoTime } from '../sql.js';
import type { SqlDb } from '../sql.js';
import type { ResultColumns, ResultStore } from './results.js';
import { Params, visibleWhere } from './visibility.js';
import type { Page, Visibility, WorkloadFilter } from './visibility.js';

type Time = number | Date;

interface ScanRow extends WorkloadRow {
  id: number | string;
  report_id: string;
  kind: ScanKind;
  scan_time: Time;
  received_at: Time;
  inventory_hash: string;
  summary: unknown;
}

const SCAN_COLUMNS = `s.id, s.report_id, s.kind, s.scan_time, s.received_at, s.inventory_hash,
  c.name AS cluster, w.namespace, w.pod, w.container, s.node, s.image, s.image_digest, r.summary`;
const SCAN_FROM = `scanner_scans s
  JOIN scanner_workloads w ON w.id = s.workload_id
  JOIN scanner_clusters c ON c.id = w.cluster_id
  JOIN scanner_results r ON r.id = s.result_id`;
/** The latest scan of each workload. */
const LATEST_FROM = `scanner_workloads w
  JOIN scanner_clusters c ON c.id = w.cluster_id
  JOIN scanner_scans s ON s.id = w.last_scan_id
  JOIN scanner_results r ON r.id = s.result_id`;

const zeroCounts = (): NamespaceSummary['counts'] => ({
  CRITICAL: 0,
  HIGH: 0,
  MEDIUM: 0,
  LOW: 0,
  UNKNOWN: 0,
});

export class ScanReads {
  constructor(
    /** Outside any transaction. */
    readonly db: SqlDb,
    private readonly results: ResultStore,
  ) {}

  private scanOf(row: ScanRow): ScanRecord {
    return {
      id: int(row.id),
      reportId: row.report_id,
      workload: identityOf(row),
      scanTime: isoTime(row.scan_time),
      receivedAt: isoTime(row.received_at),
      inventoryHash: row.inventory_hash,
      kind: row.kind,
      summary: this.db.json<ScanRecord['summary']>(row.summary),
    };
  }

  private async detailOf(row: ScanRow & ResultColumns): Promise<ScanDetail> {
    const content = (await this.results.decoder(this.db, row))();
    return {
      ...this.scanOf(row),
      vulnerabilities: content.vulnerabilities,
      insecureConfigurations: content.insecureConfigurations,
      inventory: content.inventory,
    };
  }

  /** The scan a report id produced in a cluster (by name, or by id inside a transaction). */
  async report(
    db: SqlDb,
    cluster: { name: string } | { id: number },
    reportId: string,
  ): Promise<ReportRef | undefined> {
    const byName = 'name' in cluster;
    const row = await db.get<WorkloadRow & { id: number | string; kind: ReportRef['kind'] }>(
      `SELECT s.id, s.kind, c.name AS cluster, w.namespace, w.pod, w.container, s.node, s.image, s.image_digest
       FROM scanner_reports rp
       JOIN scanner_clusters c ON c.id = rp.cluster_id
       JOIN scanner_scans s ON s.id = rp.scan_id
       JOIN scanner_workloads w ON w.id = s.workload_id
       WHERE ${byName ? 'c.name' : 'c.id'} = $1 AND rp.report_id = $2`,
      [byName ? cluster.name : cluster.id, reportId],
    );
    return row && { scanId: int(row.id), kind: row.kind, workload: identityOf(row) };
  }

  async lastInventoryHash(workload: WorkloadIdentity): Promise<string | undefined> {
    const row = await this.db.get<{ inventory_hash: string }>(
      `SELECT s.inventory_hash FROM scanner_workloads w
       JOIN scanner_clusters c ON c.id = w.cluster_id
       JOIN scanner_scans s ON s.id = w.last_scan_id
       WHERE c.name = $1 AND w.namespace = $2 AND w.pod = $3 AND w.container = $4`,
      [workload.cluster, workload.namespace, workload.pod, workload.container ?? ''],
    );
    return row?.inventory_hash;
  }

  /** Per matching workload, its latest scan at or before `at`. */
  async latestScans(
    cluster: string,
    visibility: Visibility,
    filter: WorkloadFilter & { pod: string },
    at: Date,
  ): Promise<ScanDetail[]> {
    const p = new Params();
    const where = visibleWhere(this.db, p, visibility, filter);
    const rows = await this.db.all<ScanRow & ResultColumns>(
      `SELECT ${SCAN_COLUMNS}, r.inventory_id, r.runs, r.insecure_configurations
       FROM ${SCAN_FROM}
       WHERE c.name = ${p.add(cluster)} AND ${where}
         AND s.id = (SELECT s2.id FROM scanner_scans s2 WHERE s2.workload_id = w.id AND s2.scan_time <= ${p.add(at)}
                     ORDER BY s2.scan_time DESC, s2.id DESC LIMIT 1)
       ORDER BY w.container`,
      p.values,
    );
    return Promise.all(rows.map((row) => this.detailOf(row)));
  }

  async listWorkloads(visibility: Visibility, filter: WorkloadFilter, page: Page): Promise<WorkloadRecord[]> {
    const p = new Params();
    const where = visibleWhere(this.db, p, visibility, filter);
    const rows = await this.db.all<
      WorkloadRow & {
        first_seen: Time;
        last_seen: Time;
        scan_id: number | string | null;
        scan_time: Time | null;
        kind: ScanKind | null;
        summary: unknown;
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
      firstSeen: isoTime(r.first_seen),
      lastSeen: isoTime(r.last_seen),
      ...(r.scan_id === null
        ? {}
        : {
            lastScan: {
              id: int(r.scan_id),
              scanTime: isoTime(r.scan_time as Time),
              kind: r.kind as ScanKind,
              summary: this.db.json<ScanRecord['summary']>(r.summary),
            },
          }),
    }));
  }

  async listScans(visibility: Visibility, filter: WorkloadFilter, page: Page): Promise<ScanRecord[]> {
    const p = new Params();
    const where = visibleWhere(this.db, p, visibility, filter);
    const rows = await this.db.all<ScanRow>(
      `SELECT ${SCAN_COLUMNS} FROM ${SCAN_FROM} WHERE ${where}
       ORDER BY s.scan_time DESC, s.id DESC LIMIT ${p.add(page.limit)} OFFSET ${p.add(page.offset)}`,
      p.values,
    );
    return rows.map((row) => this.scanOf(row));
  }

  async getScan(id: number, visibility: Visibility): Promise<ScanDetail | undefined> {
    const p = new Params();
    const where = visibleWhere(this.db, p, visibility);
    const row = await this.db.get<ScanRow & ResultColumns>(
      `SELECT ${SCAN_COLUMNS}, r.inventory_id, r.runs, r.insecure_configurations
       FROM ${SCAN_FROM} WHERE s.id = ${p.add(id)} AND ${where}`,
      p.values,
    );
    return row && this.detailOf(row);
  }

  /** The latest scan of each visible workload running the image (by reference or digest), newest first. */
  async imageScans(visibility: Visibility, query: ImageQuery, limit: number): Promise<ScanRecord[]> {
    const p = new Params();
    const where = visibleWhere(this.db, p, visibility);
    const rows = await this.db.all<ScanRow>(
      `SELECT ${SCAN_COLUMNS} FROM ${LATEST_FROM}
       WHERE (w.image = ${p.add(query.image)} OR w.image_digest = ${p.add(query.digest ?? null)}) AND ${where}
       ORDER BY s.scan_time DESC, s.id DESC LIMIT ${p.add(limit)}`,
      p.values,
    );
    return rows.map((row) => this.scanOf(row));
  }

  /** Per namespace, the sums of its workloads' latest summaries. */
  async summary(visibility: Visibility, filter: { namespace?: string }): Promise<NamespaceSummary[]> {
    const p = new Params();
    const where = visibleWhere(this.db, p, visibility, filter);
    const rows = await this.db.all<{ cluster: string; namespace: string; summary: unknown }>(
      `SELECT c.name AS cluster, w.namespace, r.summary FROM ${LATEST_FROM}
       WHERE ${where}
       ORDER BY c.name, w.namespace`,
      p.values,
    );
    const byNamespace = new Map<string, NamespaceSummary>();
    for (const row of rows) {
      const summary = this.db.json<ScanRecord['summary']>(row.summary);
      const key = `${row.cluster}\u0000${row.namespace}`;
      let entry = byNamespace.get(key);
      if (!entry) {
        entry = {
          cluster: row.cluster,
          namespace: row.namespace,
          workloads: 0,
          vulnerableWorkloads: 0,
          compliantWorkloads: 0,
          counts: zeroCounts(),
          configurationCounts: zeroCounts(),
        };
        byNamespace.set(key, entry);
      }
      entry.workloads += 1;
      let vulnerable = false;
      for (const severity of SEVERITIES) {
        const n = summary.counts[severity] ?? 0;
        entry.counts[severity] += n;
        if (n > 0) vulnerable = true;
        entry.configurationCounts[severity] += summary.configurationCounts[severity] ?? 0;
      }
      if (vulnerable) entry.vulnerableWorkloads += 1;
      if (summary.compliance.passed) entry.compliantWorkloads += 1;
    }
    return [...byNamespace.values()];
  }
}
