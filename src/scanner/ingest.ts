/**
 * Agent report ingestion: idempotency by report id, the unchanged-hash check-in fast path,
 * matching through `evaluateInventory`, and the rule deciding which scans cause a
 * `dev.containment.scan.completed` event (the first scan of a workload, every scan whose findings
 * differ from the previous one, and every scan for triggers that asked for them all).
 */
import { EventTypes, createEvent } from '../events/cloud-event.js';
import type { WorkloadIdentity } from '../events/cloud-event.js';
import type { InsecureConfiguration, Inventory } from '../inventory/types.js';
import type { VulnerabilityFinding } from '../matching/types.js';
import { evaluateInventory } from '../scan.js';
import type { AsyncAdvisoryStore } from '../vulndb/advisory-store.js';
import { ApiErrorCodes, ScannerApiError } from './api-error.js';
import type { PlannedEvent, ScanEventContext, ScannerStore, StoredInventory } from './store/scanner-store.js';

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

/** Stable identities of a scan's findings, so two scans can be compared without their details. */
export function findingKeys(
  vulnerabilities: readonly VulnerabilityFinding[],
  insecureConfigurations: readonly InsecureConfiguration[],
): string[] {
  const keys = new Set<string>();
  for (const v of vulnerabilities) {
    keys.add(`vuln|${v.id}|${v.package.ecosystem}|${v.package.name}|${v.package.version}`);
  }
  for (const c of insecureConfigurations) keys.add(`config|${c.id}`);
  return [...keys].sort();
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
  const { previousKeys, content } = context;
  const changed = previousKeys === undefined || !sameKeys(previousKeys, content.findingKeys);
  const recipients = context.triggers.filter((t) => changed || t.everyScan).map((t) => t.id);
  if (recipients.length === 0) return [];
  const before = new Set(previousKeys ?? []);
  const newFindings = new Set(
    content.vulnerabilities
      .filter(
        (v) => !before.has(`vuln|${v.id}|${v.package.ecosystem}|${v.package.name}|${v.package.version}`),
      )
      .map((v) => v.id),
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
    },
    { time: scanTime },
  );
  return [{ event, triggerIds: recipients }];
}

export interface IngestDeps {
  store: ScannerStore;
  advisories: AsyncAdvisoryStore;
  /** Called after a transaction that wrote events has committed. */
  onEvents: () => void;
}

function reportIdConflict(reportId: string): ScannerApiError {
  return new ScannerApiError(
    409,
    ApiErrorCodes.REPORT_ID_CONFLICT,
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
  if (!(await store.getCluster(report.workload.cluster))) {
    throw new ScannerApiError(
      404,
      ApiErrorCodes.CLUSTER_NOT_FOUND,
      `cluster ${report.workload.cluster} is not registered`,
    );
  }
  // Fast paths before any matching: a retried report, then an unchanged inventory.
  const seen = await store.findReport(report.workload.cluster, report.reportId);
  if (seen) return duplicateOf(seen.scanId, seen.workload, seen.kind);

  const events = (context: ScanEventContext): PlannedEvent[] =>
    planScanEvents(report.workload, scanTime, context);
  const record = async (inventory?: StoredInventory): Promise<IngestResult | undefined> => {
    const outcome = await store.recordScan({
      reportId: report.reportId,
      workload: report.workload,
      scanTime,
      inventoryHash: report.inventoryHash,
      content: inventory ? await evaluate(deps.advisories, report, inventory) : undefined,
      events,
    });
    if (outcome.status === 'hash-changed') return undefined;
    if (outcome.status === 'duplicate') return duplicateOf(outcome.scanId, outcome.workload, outcome.kind);
    if (outcome.events > 0) deps.onEvents();
    return { scanId: outcome.scanId, kind: outcome.kind, duplicate: false, events: outcome.events };
  };

  if (!report.inventory) {
    // The store checks the hash in its transaction: unknown workload or another hash → hash-changed.
    const checkedIn = await record();
    if (checkedIn) return checkedIn;
    throw new ScannerApiError(
      409,
      ApiErrorCodes.INVENTORY_REQUIRED,
      `inventory hash is not the workload's last one; send the report with its inventory`,
    );
  }
  if ((await store.lastInventoryHash(report.workload)) === report.inventoryHash) {
    const checkedIn = await record();
    if (checkedIn) return checkedIn;
    // Another report changed the workload's hash meanwhile: this one needs matching after all.
  }
  return (await record(report.inventory)) as IngestResult;
}

async function evaluate(
  advisories: AsyncAdvisoryStore,
  report: AgentReport,
  stored: StoredInventory,
): Promise<NonNullable<Parameters<ScannerStore['recordScan']>[0]['content']>> {
  const inventory: Inventory = { ...stored, notes: [] };
  const result = await evaluateInventory(
    {
      kind: 'container',
      ref: `${report.workload.cluster}/${report.workload.namespace}/${report.workload.pod}`,
    },
    inventory,
    advisories,
    { scanTime: report.scanTime },
  );
  return {
    inventory: stored,
    vulnerabilities: result.vulnerabilities,
    insecureConfigurations: result.insecureConfigurations,
    summary: result.summary,
    findingKeys: findingKeys(result.vulnerabilities, result.insecureConfigurations),
  };
}
