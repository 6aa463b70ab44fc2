/**
 * Re-matching stored inventories when the advisory database changes: no node rescans. The
 * re-match index (`rematch-index.ts`) names the workloads whose latest inventory holds a package
 * a changed advisory names, or whose findings cite one; only their touched packages are matched
 * again (findings are per package, so the others' stay as stored). A workload whose finding keys
 * change gets a scan of kind `rematch` and a `dev.containment.findings.changed` event for its
 * triggers, in one transaction; the others get nothing.
 *
 * `Rematcher` notices imports made by any process (`containment db import` from another shell)
 * by polling the advisory store's last import id against a cursor kept in the scanner store.
 */
import { EventTypes, createEvent } from '../events/cloud-event.js';
import type { WorkloadIdentity } from '../events/cloud-event.js';
import type { Package } from '../inventory/types.js';
import { matchIdentity, matchPackages, summarize } from '../matching/index.js';
import type { VulnerabilityFinding } from '../matching/types.js';
import { evaluateInventory } from '../scan.js';
import type { AsyncAdvisoryStore } from '../vulndb/advisory-store.js';
import type { OsvRecord } from '../vulndb/osv.js';
import { findingKeys } from './ingest.js';
import { advisoryKey, advisoryPackageKeys, inventoryPackageKey, resultIndexKeys } from './rematch-index.js';
import type {
  PlannedEvent,
  RematchTarget,
  ScanContent,
  ScanEventContext,
  ScannerStore,
} from './store/scanner-store.js';

export interface RematchDeps {
  store: ScannerStore;
  advisories: AsyncAdvisoryStore;
  /** Called after a transaction that wrote events has committed. */
  onEvents: () => void;
  /** Clock for the re-match scans' time (tests). */
  now?: () => Date;
  /** Workloads read per store call. */
  batchSize?: number;
}

export interface RematchReport {
  /** Changed advisories considered. */
  advisories: number;
  /** Workloads whose stored inventory was read again. */
  candidates: number;
  /** Workloads whose findings changed: each got a `rematch` scan. */
  rematched: number;
  /** Events written (one per re-matched workload that has a trigger). */
  events: number;
}

const DEFAULT_BATCH = 200;
/** A re-match whose workload got a newer scan meanwhile is redone on that scan, this often at most. */
const STALE_RETRIES = 3;

/** `<ecosystem>|<name>|<version>`: the package part of a vulnerability finding key. */
function packageTriple(pkg: Pick<Package, 'ecosystem' | 'name' | 'version'>): string {
  return `${pkg.ecosystem}|${pkg.name}|${pkg.version}`;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

/** Pure: the `findings.changed` event of a re-match, to every trigger of the workload. */
export function planRematchEvents(
  workload: WorkloadIdentity,
  scanTime: Date,
  context: ScanEventContext,
): PlannedEvent[] {
  const before = new Set(context.previousKeys ?? []);
  if (context.triggers.length === 0 || sameKeys([...before].sort(), context.content.findingKeys)) return [];
  const newFindings = new Set(
    context.content.vulnerabilities
      .filter((v) => !before.has(findingKeys([v], [])[0] ?? ''))
      .map((v) => v.id),
  );
  const event = createEvent(
    EventTypes.FINDINGS_CHANGED,
    workload.cluster,
    {
      workload,
      scanTime: scanTime.toISOString(),
      summary: context.content.summary.counts,
      newFindings: [...newFindings].sort(),
      insecureConfigurations: [...new Set(context.content.insecureConfigurations.map((c) => c.id))].sort(),
      reason: 'feed-update',
    },
    { time: scanTime },
  );
  return [{ event, triggerIds: context.triggers.map((t) => t.id) }];
}

/** What one re-match run knows about the change, shared by every workload it reads. */
class ChangeSet {
  private readonly records = new Map<string, Promise<OsvRecord[]>>();
  private readonly findings = new Map<string, VulnerabilityFinding[]>();

  constructor(
    readonly advisories: AsyncAdvisoryStore,
    readonly ids: ReadonlySet<string>,
    readonly packageKeys: ReadonlySet<string>,
  ) {}

  /** Current candidate records of a package's match identity, looked up once per run. */
  private candidates(pkg: Package): Promise<OsvRecord[]> {
    const { ecosystem, name } = matchIdentity(pkg);
    const key = `${ecosystem}\u0000${name}`;
    let found = this.records.get(key);
    if (!found) {
      found = Promise.resolve(this.advisories.lookup(ecosystem, name));
      this.records.set(key, found);
    }
    return found;
  }

  /** The package's findings against the current records (identical packages are matched once). */
  async match(pkg: Package): Promise<VulnerabilityFinding[]> {
    const key = JSON.stringify(pkg);
    let found = this.findings.get(key);
    if (!found) {
      const records = await this.candidates(pkg);
      found = matchPackages([pkg], records);
      this.findings.set(key, found);
    }
    return found;
  }
}

/**
 * The target's content against the current advisories, or undefined when its finding keys stay
 * the same. `citesChanged`: its stored findings may cite a changed advisory.
 */
async function rederive(
  change: ChangeSet,
  target: RematchTarget,
  citesChanged: boolean,
): Promise<ScanContent | undefined> {
  const { packages, insecureConfigurations } = target.inventory;
  const touchedKeys = new Set<string>();
  for (const pkg of packages) {
    const key = inventoryPackageKey(pkg);
    if (change.packageKeys.has(key)) touchedKeys.add(key);
  }
  let stored: VulnerabilityFinding[] | undefined;
  if (citesChanged) {
    // A changed record may no longer name a package it was found in: re-match that package too.
    stored = target.loadVulnerabilities();
    for (const v of stored) {
      if (change.ids.has(v.id) || v.aliases.some((a) => change.ids.has(a)))
        touchedKeys.add(inventoryPackageKey(v.package as Package));
    }
  }
  // Findings keys name the installed package, not the match identity: treat every package
  // sharing name and version with a touched one as touched, so no stale key survives.
  const touchedTriples = new Set(
    packages.filter((p) => touchedKeys.has(inventoryPackageKey(p))).map(packageTriple),
  );
  if (touchedTriples.size === 0) return undefined;

  const fresh = new Map<number, VulnerabilityFinding[]>();
  for (const [i, pkg] of packages.entries())
    if (touchedTriples.has(packageTriple(pkg))) fresh.set(i, await change.match(pkg));

  const untouchedKeys = target.findingKeys.filter((key) => {
    if (!key.startsWith('vuln|')) return true;
    // `vuln|<id>|<ecosystem>|<name>|<version>`; advisory ids never contain '|'.
    return !touchedTriples.has(key.slice(key.indexOf('|', 5) + 1));
  });
  const freshFindings = [...fresh.values()].flat();
  const keys = [...new Set([...untouchedKeys, ...findingKeys(freshFindings, [])])].sort();
  if (sameKeys(keys, target.findingKeys)) return undefined;

  // Findings are stored in inventory order, one run per package: keep the untouched runs.
  stored ??= target.loadVulnerabilities();
  const vulnerabilities: VulnerabilityFinding[] = [];
  let next = 0;
  for (const [i, pkg] of packages.entries()) {
    const triple = packageTriple(pkg);
    const run: VulnerabilityFinding[] = [];
    while (next < stored.length && packageTriple((stored[next] as VulnerabilityFinding).package) === triple)
      run.push(stored[next++] as VulnerabilityFinding);
    vulnerabilities.push(...(fresh.get(i) ?? run));
  }
  if (next !== stored.length) return evaluateFully(change, target);
  return {
    inventory: target.inventory,
    vulnerabilities,
    insecureConfigurations,
    summary: summarize(vulnerabilities, insecureConfigurations),
    findingKeys: keys,
  };
}

/** Stored findings out of inventory order (not written by this server): match everything. */
async function evaluateFully(change: ChangeSet, target: RematchTarget): Promise<ScanContent | undefined> {
  const result = await evaluateInventory(
    {
      kind: 'container',
      ref: `${target.workload.cluster}/${target.workload.namespace}/${target.workload.pod}`,
    },
    { ...target.inventory, notes: [] },
    change.advisories,
    { scanTime: target.scanTime },
  );
  const keys = findingKeys(result.vulnerabilities, result.insecureConfigurations);
  if (sameKeys(keys, target.findingKeys)) return undefined;
  return {
    inventory: target.inventory,
    vulnerabilities: result.vulnerabilities,
    insecureConfigurations: result.insecureConfigurations,
    summary: result.summary,
    findingKeys: keys,
  };
}

/**
 * Re-matches every workload the changed advisories may concern (ids from `ImportReport`
 * addedIds/changedIds/withdrawnIds, or `changedSince`).
 */
export async function rematchAdvisories(
  deps: RematchDeps,
  advisoryIds: readonly string[],
): Promise<RematchReport> {
  const { store, advisories } = deps;
  const ids = new Set(advisoryIds);
  const packageKeys = new Set<string>();
  for (const id of ids) {
    for (const key of advisoryPackageKeys(await advisories.get(id))) packageKeys.add(key);
  }
  const change = new ChangeSet(advisories, ids, packageKeys);
  const citing = new Set(await store.rematchCandidates([...ids].map(advisoryKey)));
  const candidates = [...new Set([...(await store.rematchCandidates([...packageKeys])), ...citing])];
  const report: RematchReport = {
    advisories: ids.size,
    candidates: candidates.length,
    rematched: 0,
    events: 0,
  };
  const batchSize = deps.batchSize ?? DEFAULT_BATCH;
  for (let start = 0; start < candidates.length; start += batchSize) {
    for (let target of await store.rematchTargets(candidates.slice(start, start + batchSize))) {
      for (let attempt = 0; attempt < STALE_RETRIES; attempt++) {
        const content = await rederive(change, target, citing.has(target.workloadId));
        if (!content) break;
        const scanTime = deps.now?.() ?? new Date();
        const workload = target.workload;
        const outcome = await store.recordRematch({
          workloadId: target.workloadId,
          basedOnScanId: target.scanId,
          scanTime,
          content,
          indexKeys: resultIndexKeys(content.inventory.packages, content.vulnerabilities),
          events: (context) => planRematchEvents(workload, scanTime, context),
        });
        if (outcome.status === 'recorded') {
          report.rematched += 1;
          report.events += outcome.events;
          if (outcome.events > 0) deps.onEvents();
          break;
        }
        // A report arrived meanwhile: re-match the newer scan instead.
        const [newer] = await store.rematchTargets([target.workloadId]);
        if (!newer) break;
        target = newer;
      }
    }
  }
  return report;
}

export interface RematchCheck extends RematchReport {
  /** The advisory import the check caught up with; undefined while the database has none. */
  importId: number | undefined;
  /** The import the previous check had reached; undefined on the first check (baseline only). */
  sinceImportId: number | undefined;
}

export interface RematcherOptions extends RematchDeps {
  /** How often to look for new imports; 0 = only when `check()` is called. */
  pollIntervalMs: number;
  onCheck?: (check: RematchCheck) => void;
  onError?: (error: unknown) => void;
}

/**
 * Polls the advisory store's last import id (a cheap query) and re-matches what changed since
 * the cursor stored in the scanner store, so imports by another process are noticed and a restart
 * misses none. The first check ever only records the baseline: scans stored until then were
 * matched against that database. Checks run one at a time.
 */
export class Rematcher {
  private running: Promise<RematchCheck> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: RematcherOptions) {}

  /** Runs a check now (after the one in progress, if any). */
  check(): Promise<RematchCheck> {
    const previous = this.running ?? Promise.resolve(undefined);
    const next = previous.catch(() => undefined).then(() => this.checkOnce());
    this.running = next;
    void next
      .finally(() => {
        if (this.running === next) this.running = undefined;
      })
      .catch(() => undefined);
    return next;
  }

  private async checkOnce(): Promise<RematchCheck> {
    const { store, advisories } = this.options;
    const importId = (await advisories.lastImport())?.importId;
    const cursor = await store.rematchCursor();
    const none = { advisories: 0, candidates: 0, rematched: 0, events: 0 };
    const result = (report: RematchReport): RematchCheck => ({
      ...report,
      importId,
      sinceImportId: cursor,
    });
    if (importId === undefined || importId === cursor) return result(none);
    if (cursor === undefined) {
      await store.setRematchCursor(importId);
      return result(none);
    }
    // A lower id than the cursor: the database was rebuilt, so every record may have changed.
    const changed = await advisories.changedSince(importId < cursor ? 0 : cursor);
    const report = await rematchAdvisories(this.options, changed);
    await store.setRematchCursor(importId);
    return result(report);
  }

  /** Checks at once (recording the baseline), then every `pollIntervalMs`. */
  start(): void {
    const tick = (): void => {
      this.check()
        .then((c) => this.options.onCheck?.(c))
        .catch((e: unknown) => this.options.onError?.(e))
        .finally(() => {
          if (!this.stopped && this.options.pollIntervalMs > 0)
            this.timer = setTimeout(tick, this.options.pollIntervalMs);
        });
    };
    tick();
  }

  /** Stops polling and waits for a check in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }
}
