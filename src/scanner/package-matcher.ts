/**
 * Matching for the scanner service, one package at a time and remembered: a package's findings
 * (without its location) depend only on its match identity and the advisory database, and the
 * workloads of a cluster run the same few hundred package versions over and over. The cache is
 * dropped whenever the advisory database has a new import (by this or any other process).
 */
import type { Package } from '../inventory/types.js';
import { matchIdentity, matchPackages, summarize } from '../matching/index.js';
import type { InsecureConfiguration } from '../inventory/types.js';
import type { ScanSummary, VulnerabilityFinding } from '../matching/types.js';
import { DEFAULT_THRESHOLDS } from '../matching/types.js';
import type { AsyncAdvisoryStore } from '../vulndb/advisory-store.js';
import type { OsvRecord } from '../vulndb/osv.js';
import { findingKeys, findingSet, joinRuns } from './finding-sets.js';
import type { BareFinding, FindingSet } from './finding-sets.js';
import { Lru } from './store/result-codec.js';
import type { ScanContent, StoredInventory } from './store/scanner-store.js';

/** What a package's findings depend on besides the advisories (not its location or purl). */
export function matchKey(pkg: Package): string {
  return [pkg.ecosystem, pkg.name, pkg.version, pkg.source?.name ?? '', pkg.source?.version ?? ''].join(
    '\u0000',
  );
}

/** Pure: one package's findings against its candidate records, as a set (no package fields). */
export function packageFindingSet(pkg: Package, records: readonly OsvRecord[]): FindingSet {
  const findings = matchPackages([pkg], records).map((f): BareFinding => {
    const { package: _package, ...rest } = f;
    return rest;
  });
  return findingSet(findings);
}

/**
 * Pure: a scan's content from its inventory and one finding set per package. The vulnerability
 * list and the finding keys are built on first access: storing needs neither.
 */
export function contentOf(
  inventory: StoredInventory,
  sets: readonly (FindingSet | undefined)[],
  insecureConfigurations: readonly InsecureConfiguration[] = inventory.insecureConfigurations,
): ScanContent {
  let vulnerabilities: VulnerabilityFinding[] | undefined;
  let keys: string[] | undefined;
  // Packages only a manifest declares never count toward a workload's findings.
  if (inventory.packages.some((p) => p.provenance === 'declared')) {
    sets = sets.map((s, i) => (inventory.packages[i]?.provenance === 'declared' ? undefined : s));
  }
  // `summarize` counts severities only; the bare findings carry them.
  const flat = sets.flatMap((s) => s?.findings ?? []) as unknown as VulnerabilityFinding[];
  const summary: ScanSummary = summarize(
    flat,
    insecureConfigurations,
    DEFAULT_THRESHOLDS,
    inventory.completeness ?? 'complete',
  );
  return {
    inventory,
    insecureConfigurations: [...insecureConfigurations],
    summary,
    sets,
    get vulnerabilities(): VulnerabilityFinding[] {
      vulnerabilities ??= joinRuns(
        inventory.packages,
        sets.map((s) => s?.findings),
      );
      return vulnerabilities;
    },
    get findingKeys(): string[] {
      keys ??= findingKeys(this.vulnerabilities, insecureConfigurations);
      return keys;
    },
  };
}

/** Matches packages elsewhere (a worker thread: `match-worker/`), one set per package. */
export interface RemoteMatcher {
  match(packages: readonly Package[]): Promise<FindingSet[]>;
}

export interface PackageMatcherOptions {
  /** Cached packages at most (default 100,000). */
  maxPackages?: number;
  /** Where cache misses are matched; default: here, on the calling thread. */
  remote?: RemoteMatcher;
}

export class PackageMatcher {
  private readonly cache: Lru<string, FindingSet>;
  private readonly remote: RemoteMatcher | undefined;
  /** Packages being matched now, by `matchKey`. */
  private readonly inFlight = new Map<string, Promise<FindingSet>>();
  /** The import the cache reflects; null before the first call. */
  private importId: number | undefined | null = null;

  constructor(
    private readonly advisories: AsyncAdvisoryStore,
    options: PackageMatcherOptions = {},
  ) {
    this.cache = new Lru(options.maxPackages ?? 100_000);
    this.remote = options.remote;
  }

  /** Matches packages on this thread. */
  private async matchHere(packages: readonly Package[]): Promise<FindingSet[]> {
    const records = await this.advisories.lookupMany(
      packages.map((p) => {
        const { ecosystem, name } = matchIdentity(p);
        return { ecosystem, name };
      }),
    );
    return packages.map((pkg, i) => packageFindingSet(pkg, records[i] ?? []));
  }

  /** One finding set per package (undefined: no findings), against the database as it is now. */
  async match(packages: readonly Package[]): Promise<(FindingSet | undefined)[]> {
    const importId = (await this.advisories.lastImport())?.importId;
    if (importId !== this.importId) {
      this.cache.clear();
      this.inFlight.clear();
      this.importId = importId;
    }
    const generation = this.importId;
    const keys = packages.map(matchKey);
    const found = new Map<string, FindingSet | Promise<FindingSet>>();
    const missing = new Map<string, Package>();
    for (const [i, key] of keys.entries()) {
      if (found.has(key)) continue;
      // Concurrent reports share one matching of a package nobody has cached yet.
      const known = this.cache.get(key) ?? this.inFlight.get(key);
      if (known) found.set(key, known);
      else if (!missing.has(key)) missing.set(key, packages[i] as Package);
    }
    if (missing.size > 0) {
      const entries = [...missing];
      const batch = this.remote
        ? this.remote.match(entries.map(([, p]) => p))
        : this.matchHere(entries.map(([, p]) => p));
      for (const [i, [key]] of entries.entries()) {
        const one = batch.then((sets) => sets[i] as FindingSet);
        this.inFlight.set(key, one);
        found.set(key, one);
      }
      const settle = (sets: FindingSet[] | undefined): void => {
        for (const [i, [key]] of entries.entries()) {
          if (this.inFlight.get(key) === found.get(key)) this.inFlight.delete(key);
          // A newer import arrived meanwhile: these sets may be stale, do not keep them.
          if (sets && generation === this.importId) this.cache.set(key, sets[i] as FindingSet);
        }
      };
      batch.then(settle, () => settle(undefined));
    }
    const sets = await Promise.all(keys.map((key) => found.get(key) as FindingSet | Promise<FindingSet>));
    return sets.map((set) => (set.findings.length > 0 ? set : undefined));
  }
}
