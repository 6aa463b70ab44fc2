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
import { matchIdentity } from '../matching/index.js';
import type { AsyncAdvisoryStore } from '../vulndb/advisory-store.js';
import { findingSet, vulnerabilityKey } from './finding-sets.js';
import type { FindingSet } from './finding-sets.js';
import { contentOf, matchKey, packageFindingSet } from './package-matcher.js';
import { advisoryKey, advisoryPackageKeys, inventoryPackageKey } from './rematch-index.js';
import type {
  PlannedEvent,
  RecordRematchInput,
  RematchTarget,
  ScanContent,
  ScanEventContext,
  ScannerStore,
} from './scanner-store.js';

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

async function sequentially<T, R>(items: readonly T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const item of items) out.push(await run(item));
  return out;
}

/** `<ecosystem>|<name>|<version>`: the package part of a vulnerability finding key. */
function packageTriple(pkg: Pick<Package, 'ecosystem' | 'name' | 'version'>): string {
  return `${pkg.ecosystem}|${pkg.name}|${pkg.version}`;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

/** What a re-match changed, worked out from the touched packages only (`rederive`). */
export interface RematchDiff {
  /** Ids of findings whose key the based-on result did not have. */
  newFindings: readonly string[];
}

/**
 * Pure: the `findings.changed` event of a re-match, to every trigger of the workload. With `diff`
 * (computed against the very result the store re-checks as the latest) the findings are not
 * decoded again; without it the previous and new keys are compared here.
 */
export function planRematchEvents(
  workload: WorkloadIdentity,
  scanTime: Date,
  context: ScanEventContext,
  diff?: RematchDiff,
): PlannedEvent[] {
  if (context.triggers.length === 0) return [];
  let newFindings: Set<string>;
  if (diff) newFindings = new Set(diff.newFindings);
  else {
    const before = new Set(context.previousKeys ?? []);
    if (sameKeys([...before].sort(), context.content.findingKeys)) return [];
    newFindings = new Set(
      context.content.vulnerabilities
        .filter((v) => !before.has(vulnerabilityKey(v.id, v.package)))
        .map((v) => v.id),
    );
  }
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
      scanId: context.scanId,
    },
    { time: scanTime },
  );
  return [{ event, triggerIds: context.triggers.map((t) => t.id) }];
}

/** What one re-match run knows about the change, shared by every workload it reads. */
class ChangeSet {
  private readonly sets = new Map<string, Promise<FindingSet>>();
  private readonly cited = new WeakMap<FindingSet, boolean>();

  constructor(
    readonly advisories: AsyncAdvisoryStore,
    readonly ids: ReadonlySet<string>,
    readonly packageKeys: ReadonlySet<string>,
  ) {}

  /** The package's findings against the current records, matched once per run per identity. */
  match(pkg: Package): Promise<FindingSet> {
    const key = matchKey(pkg);
    let found = this.sets.get(key);
    if (!found) {
      const { ecosystem, name } = matchIdentity(pkg);
      found = Promise.resolve(this.advisories.lookup(ecosystem, name)).then((records) =>
        packageFindingSet(pkg, records),
      );
      this.sets.set(key, found);
    }
    return found;
  }

  /** Whether a stored set cites a changed advisory; asked once per set object (they are shared). */
  cites(set: FindingSet): boolean {
    let cited = this.cited.get(set);
    if (cited === undefined) {
      cited = set.findings.some((f) => this.ids.has(f.id) || f.aliases.some((a) => this.ids.has(a)));
      this.cited.set(set, cited);
    }
    return cited;
  }
}

const EMPTY_DIGEST = findingSet([]).digest;

const keysOf = (set: FindingSet | undefined, pkg: Package): string[] =>
  (set?.findings ?? []).map((f) => vulnerabilityKey(f.id, pkg));

/**
 * The target's content against the current advisories, or undefined when its finding keys stay
 * the same. Only touched packages are matched again: those a changed advisory names, and (when
 * `citesChanged`) those whose stored findings cite one; the other packages keep their stored sets.
 * Keys are (id, package triple): those of untouched triples cannot change, so comparing the
 * touched triples' keys decides, and gives the new findings, without decoding the rest.
 */
async function rederive(
  change: ChangeSet,
  target: RematchTarget,
  citesChanged: boolean,
): Promise<{ content: ScanContent; diff: RematchDiff } | undefined> {
  const { packages } = target.inventory;
  const stored = target.sets();
  const keys = packages.map(inventoryPackageKey);
  const touchedKeys = new Set<string>();
  for (const key of keys) if (change.packageKeys.has(key)) touchedKeys.add(key);
  if (citesChanged) {
    // A changed record may no longer name a package it was found in: re-match that package too.
    for (const [i, set] of stored.entries()) {
      if (set && change.cites(set)) touchedKeys.add(keys[i] as string);
    }
  }
  if (touchedKeys.size === 0) return undefined;
  // Findings keys name the installed package, not the match identity: treat every package
  // sharing name and version with a touched one as touched, so no stale key survives.
  const touched = packages.filter((_, i) => touchedKeys.has(keys[i] as string));
  const touchedTriples = new Set(touched.map(packageTriple));
  // Most packages are untouched: their name alone tells, without building their triple.
  const touchedNames = new Set(touched.map((pkg) => pkg.name));

  const before = new Set<string>();
  const after = new Map<string, string>();
  const sets: (FindingSet | undefined)[] = [];
  for (const [i, pkg] of packages.entries()) {
    const old = stored[i];
    if (
      !touchedNames.has(pkg.name) ||
      !touchedTriples.has(packageTriple(pkg)) ||
      pkg.provenance === 'declared'
    ) {
      sets.push(old);
      continue;
    }
    const fresh = await change.match(pkg);
    sets.push(fresh.findings.length > 0 ? fresh : undefined);
    // The same set (by digest) gives the same keys on both sides: nothing to compare.
    if ((old?.digest ?? EMPTY_DIGEST) === fresh.digest) continue;
    for (const key of keysOf(old, pkg)) before.add(key);
    for (const f of fresh.findings) after.set(vulnerabilityKey(f.id, pkg), f.id);
  }
  if (before.size === after.size && [...before].every((key) => after.has(key))) return undefined;
  const newFindings = [...new Set([...after].filter(([key]) => !before.has(key)).map(([, id]) => id))].sort();
  return { content: contentOf(target.inventory, sets), diff: { newFindings } };
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
    let targets = await store.rematchTargets(candidates.slice(start, start + batchSize));
    for (let attempt = 0; attempt < STALE_RETRIES && targets.length > 0; attempt++) {
      const inputs: RecordRematchInput[] = [];
      for (const target of targets) {
        const derived = await rederive(change, target, citing.has(target.workloadId));
        if (!derived) continue;
        const { content, diff } = derived;
        const scanTime = deps.now?.() ?? new Date();
        const workload = target.workload;
        inputs.push({
          workloadId: target.workloadId,
          basedOnScanId: target.scanId,
          scanTime,
          content,
          events: (context) => planRematchEvents(workload, scanTime, context, diff),
        });
      }
      const outcomes = store.recordRematches
        ? await store.recordRematches(inputs)
        : await sequentially(inputs, (input) => store.recordRematch(input));
      const stale: number[] = [];
      let events = 0;
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.status === 'recorded') {
          report.rematched += 1;
          events += outcome.events;
        } else stale.push((inputs[i] as RecordRematchInput).workloadId);
      }
      report.events += events;
      if (events > 0) deps.onEvents();
      // A report arrived meanwhile: re-match the newer scan instead.
      targets = stale.length > 0 ? await store.rematchTargets(stale) : [];
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
