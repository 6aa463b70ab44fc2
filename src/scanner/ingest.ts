/**
 * Agent report ingestion: idempotency by report id, the unchanged-hash check-in fast path,
 * matching through the `PackageMatcher` (one finding set per package, cached), and the rule
 * deciding which scans cause a `dev.containment.scan.completed` event (the first scan of a
 * workload, every scan whose findings differ from the previous one, and every scan for triggers
 * that asked for them all).
 */
import { ConflictError, ErrorCodes } from '../errors.js';
import { EventTypes, createEvent } from '../events/cloud-event.js';
import type { WorkloadIdentity } from '../events/cloud-event.js';
import type { AsyncAdvisoryStore } from '../vulndb/advisory-store.js';
import { vulnerabilityKey } from './finding-sets.js';
import { PackageMatcher, contentOf } from './package-matcher.js';
import type {
  PlannedEvent,
  ScanContent,
  ScanEventContext,
  ScannerStore,
  StoredInventory,
} from './scanner-store.js';

export { findingKeys } from './finding-sets.js';

export interface AgentReport {
  reportId: string;
  workload: WorkloadIdentity;
  /** RFC 3339. */
  scanTime: string;
  /** Left out when the agent expects `inventoryHash` to be the workload's last one (a check-in). */
  inventory?: StoredInventory;
  /** The agent's hash of inventory and configuration facts; opaque to the server. */
  inventoryHash: string;
}

export interface IngestResult {
  scanId: number;
  kind: 'full' | 'check-in';
  /** True when this report id had been recorded before (nothing new was written). */
  duplicate: boolean;
  /** Events written to the outbox (0 or 1; one event fans out to every recipient trigger). */
  events: number;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

/** Pure: the events one recorded scan causes, given what the store found in its transaction. */
export function planScanEvents(
  workload: WorkloadIdentity,
  scanTime: Date,
  context: ScanEventContext,
): PlannedEvent[] {
  // Without triggers nothing is sent: decide that before decoding any findings.
  if (context.triggers.length === 0) return [];
  // A check-in reuses its predecessor's result: its findings cannot differ.
  if (context.checkIn && !context.triggers.some((t) => t.everyScan)) return [];
  const { previousKeys, content } = context;
  const changed =
    !context.checkIn && (previousKeys === undefined || !sameKeys(previousKeys, content.findingKeys));
  const recipients = context.triggers.filter((t) => changed || t.everyScan).map((t) => t.id);
  if (recipients.length === 0) return [];
  const before = new Set(previousKeys ?? []);
  const newFindings = new Set(
    content.vulnerabilities.filter((v) => !before.has(vulnerabilityKey(v.id, v.package))).map((v) => v.id),
  );
  const event = createEvent(
    EventTypes.SCAN_COMPLETED,
    workload.cluster,
    {
      workload,
      scanTime: scanTime.toISOString(),
      summary: content.summary.counts,
      newFindings: [...newFindings].sort(),
      insecureConfigurations: [...new Set(content.insecureConfigurations.map((c) => c.id))].sort(),
      scanId: context.scanId,
    },
    { time: scanTime },
  );
  return [{ event, triggerIds: recipients }];
}

export interface IngestDeps {
  store: ScannerStore;
  advisories: AsyncAdvisoryStore;
  /** Share one per server: its cache is what makes repeated packages cheap. */
  matcher?: PackageMatcher;
  /** Called after a transaction that wrote events has committed. */
  onEvents: () => void;
}

function reportIdConflict(reportId: string): ConflictError {
  return new ConflictError(
    ErrorCodes.REPORT_ID_CONFLICT,
    `report id ${reportId} was already used for another workload`,
  );
}

function sameWorkload(a: WorkloadIdentity, b: WorkloadIdentity): boolean {
  return (
    a.cluster === b.cluster &&
    a.namespace === b.namespace &&
    a.pod === b.pod &&
    (a.container ?? '') === (b.container ?? '')
  );
}

/** Records one report. The caller has already checked that it may write to the workload's namespace. */
export async function ingestReport(deps: IngestDeps, report: AgentReport): Promise<IngestResult> {
  const { store } = deps;
  const scanTime = new Date(report.scanTime);
  const duplicateOf = (
    scanId: number,
    workload: WorkloadIdentity,
    kind: 'full' | 'check-in',
  ): IngestResult => {
    if (!sameWorkload(workload, report.workload)) throw reportIdConflict(report.reportId);
    return { scanId, kind, duplicate: true, events: 0 };
  };
  const events = (context: ScanEventContext): PlannedEvent[] =>
    planScanEvents(report.workload, scanTime, context);
  const record = async (inventory?: StoredInventory): Promise<IngestResult | undefined> => {
    const outcome = await store.recordScan({
      reportId: report.reportId,
      workload: report.workload,
      scanTime,
      inventoryHash: report.inventoryHash,
      content: inventory
        ? await evaluate(deps.matcher ?? new PackageMatcher(deps.advisories), inventory)
        : undefined,
      events,
    });
    if (outcome.status === 'hash-changed') return undefined;
    if (outcome.status === 'duplicate') return duplicateOf(outcome.scanId, outcome.workload, outcome.kind);
    if (outcome.events > 0) deps.onEvents();
    return { scanId: outcome.scanId, kind: outcome.kind, duplicate: false, events: outcome.events };
  };

  // A check-in first, with or without the inventory: the store records the report as one when its
  // hash is the workload's last one, answers a retried report id and an unregistered cluster, and
  // otherwise answers hash-changed, having found the cluster registered and the report id new: so
  // a report that needs matching costs no reads before it (one statement on PostgreSQL).
  const checkedIn = await record();
  if (checkedIn) return checkedIn;
  if (!report.inventory) {
    throw new ConflictError(
      ErrorCodes.INVENTORY_REQUIRED,
      `inventory hash is not the workload's last one; send the report with its inventory`,
    );
  }
  return (await record(report.inventory)) as IngestResult;
}

async function evaluate(matcher: PackageMatcher, stored: StoredInventory): Promise<ScanContent> {
  return contentOf(stored, await matcher.match(stored.packages));
}
