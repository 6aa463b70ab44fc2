/**
 * The per-package match cache, the one both the scanner service and `scan()` (through its
 * ScanCache) use: a package's findings (without its location) depend only on its match identity
 * (`matchKey`: ecosystem, name, version, source) and the advisory database, and the workloads of
 * a cluster run the same few hundred package versions over and over. The cache is dropped
 * whenever the advisory database has a new import (by this or any other process): its
 * generation is the last import's id. Misses are looked up LOOKUP_BATCH packages per store call,
 * so a cold match holds one batch's advisories at a time, not the whole inventory's.
 *
 * A server may also share the cache with the other processes on its advisory database
 * (`shared`): a batch's misses are first read from the database's match cache (one statement,
 * entries of the current generation only), and what is still missing is matched and written
 * there (one statement), so a second replica, or a restarted one, does not look up and match
 * the packages another already has.
 */
import type { Package } from '../inventory/types.js';
import { matchIdentity, matchPackages, summarize } from '../matching/index.js';
import type { InsecureConfiguration } from '../inventory/types.js';
import type { ScanSummary, VulnerabilityFinding } from '../matching/types.js';
import { DEFAULT_THRESHOLDS } from '../matching/types.js';
import type { AsyncAdvisoryStore, SharedMatch } from '../vulndb/advisory-store.js';
import type { OsvRecord } from '../vulndb/osv.js';
import { contentDigest, findingKeys, findingSet, joinRuns } from './finding-sets.js';
import type { BareFinding, FindingSet } from './finding-sets.js';
import { Lru } from './lru.js';
import type { ScanContent, StoredInventory } from './scanner-store.js';

/** What a package's findings depend on besides the advisories (not its location or purl). */
const matchFields = (pkg: Package): string[] => [
  pkg.ecosystem,
  pkg.name,
  pkg.version,
  pkg.source?.name ?? '',
  pkg.source?.version ?? '',
];

/** `matchFields` as this process's cache key. */
export function matchKey(pkg: Package): string {
  return matchFields(pkg).join('\u0000');
}

/**
 * Pure: a package's key in the shared match cache, `matchKey`'s fields as JSON (unambiguous
 * whatever the fields hold, and without the NUL PostgreSQL text cannot hold); undefined when too
 * long for an index entry (such a package is simply not shared).
 */
export function sharedKey(pkg: Package): string | undefined {
  const key = JSON.stringify(matchFields(pkg));
  return key.length <= MAX_SHARED_KEY ? key : undefined;
}

/** Characters of a shared key at most: well inside PostgreSQL's B-tree entry limit (~2.7 kB) in UTF-8. */
const MAX_SHARED_KEY = 800;

/**
 * Pure: a match as the shared cache holds it: the findings' JSON (the set's body), then, only
 * when there were warnings, a newline and their JSON (JSON text holds no raw newline).
 */
export function encodeMatch(match: PackageMatch): string {
  return match.warnings ? `${match.body}\n${JSON.stringify(match.warnings)}` : match.body;
}

/** Pure: `encodeMatch`'s inverse (the same body, hence the same digest). */
export function decodeMatch(value: string): PackageMatch {
  const newline = value.indexOf('\n');
  const body = newline < 0 ? value : value.slice(0, newline);
  const match: PackageMatch = {
    digest: contentDigest(body),
    body,
    findings: JSON.parse(body) as BareFinding[],
  };
  if (newline >= 0) match.warnings = JSON.parse(value.slice(newline + 1)) as string[];
  return match;
}

/** Packages looked up per store call: bounds the advisories held at once (one batch's). */
export const LOOKUP_BATCH = 64;

/** One package's findings as a set, and the records that could not be evaluated for it. */
export interface PackageMatch extends FindingSet {
  /** See MatchOptions.onWarning; absent when there were none. */
  warnings?: readonly string[];
}

/** Pure: one package's findings against its candidate records, as a set (no package fields). */
export function packageFindingSet(pkg: Package, records: readonly OsvRecord[]): PackageMatch {
  const warnings: string[] = [];
  const findings = matchPackages([pkg], records, { onWarning: (w) => warnings.push(w) }).map(
    (f): BareFinding => {
      const { package: _package, ...rest } = f;
      return rest;
    },
  );
  const set: PackageMatch = findingSet(findings);
  if (warnings.length > 0) set.warnings = warnings;
  return set;
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
  /**
   * Share matches through the advisory database's match cache (when the store has one); default
   * false (`scan()`'s cache is its own).
   */
  shared?: boolean;
  /** A failed write to the shared cache, or an entry it could not read (matched here instead). */
  onSharedError?: (error: unknown) => void;
}

export class PackageMatcher {
  private readonly cache: Lru<string, PackageMatch>;
  private readonly remote: RemoteMatcher | undefined;
  private readonly shared: boolean;
  private readonly onSharedError: ((error: unknown) => void) | undefined;
  /** Packages being matched now, by `matchKey`. */
  private readonly inFlight = new Map<string, Promise<PackageMatch>>();
  /** The import the cache reflects; null before the first call. */
  private importId: number | undefined | null = null;

  constructor(
    readonly advisories: AsyncAdvisoryStore,
    options: PackageMatcherOptions = {},
  ) {
    this.cache = new Lru(options.maxPackages ?? 100_000);
    this.remote = options.remote;
    this.shared =
      options.shared === true &&
      advisories.sharedMatches !== undefined &&
      advisories.storeMatches !== undefined;
    this.onSharedError = options.onSharedError;
  }

  /** Matches packages nobody here has cached: on this thread or remotely. */
  private matchElsewhere(packages: readonly Package[]): Promise<PackageMatch[]> {
    return this.remote ? this.remote.match(packages) : this.matchHere(packages);
  }

  /**
   * `matchElsewhere` behind the shared cache: its entries of `generation` first (one statement),
   * then the rest matched and stored (one statement). Entries are stored under the generation read
   * before any advisory was looked up, so they hold that import's advisories or newer, never
   * older; and not at all once this process has seen a newer import (the local cache's guard).
   */
  private async matchShared(generation: number, packages: readonly Package[]): Promise<PackageMatch[]> {
    const keys = packages.map(sharedKey);
    const usable = keys.filter((k): k is string => k !== undefined);
    const stored = await (this.advisories.sharedMatches as NonNullable<AsyncAdvisoryStore['sharedMatches']>)(
      generation,
      usable,
    );
    const sets: (PackageMatch | undefined)[] = keys.map((k) => {
      const value = k === undefined ? undefined : stored.get(k);
      if (value === undefined) return undefined;
      try {
        return decodeMatch(value);
      } catch (e) {
        // An entry this build cannot read is a miss (matched again here), not a failed report.
        this.onSharedError?.(e);
        return undefined;
      }
    });
    const rest = [...sets.keys()].filter((i) => sets[i] === undefined);
    if (rest.length === 0) return sets as PackageMatch[];
    const matched = await this.matchElsewhere(rest.map((i) => packages[i] as Package));
    const entries: SharedMatch[] = [];
    for (const [j, i] of rest.entries()) {
      const set = matched[j] as PackageMatch;
      sets[i] = set;
      const key = keys[i];
      if (key !== undefined) entries.push({ key, value: encodeMatch(set) });
    }
    if (generation === this.importId) {
      try {
        await (this.advisories.storeMatches as NonNullable<AsyncAdvisoryStore['storeMatches']>)(
          generation,
          entries,
        );
      } catch (e) {
        // Only a cache: the matches stand; the next process matches these packages itself.
        this.onSharedError?.(e);
      }
    }
    return sets as PackageMatch[];
  }

  /**
   * Matches packages on this thread, a batch at a time: each batch's advisories are dropped once
   * matched, so memory holds one batch's candidates (one round trip per batch for a server).
   */
  private async matchHere(packages: readonly Package[]): Promise<PackageMatch[]> {
    const sets: PackageMatch[] = [];
    for (let start = 0; start < packages.length; start += LOOKUP_BATCH) {
      const batch = packages.slice(start, start + LOOKUP_BATCH);
      const records = await this.advisories.lookupMany(
        batch.map((p) => {
          const { ecosystem, name } = matchIdentity(p);
          return { ecosystem, name };
        }),
      );
      for (const [i, pkg] of batch.entries()) sets.push(packageFindingSet(pkg, records[i] ?? []));
    }
    return sets;
  }

  /**
   * The advisory database's generation (its last import's id), read now; a new one drops every
   * cached match. Callers that keep results of their own (ScanCache) key them by it too.
   */
  async generation(): Promise<number | undefined> {
    const importId = (await this.advisories.lastImport())?.importId;
    if (importId !== this.importId) {
      this.cache.clear();
      this.inFlight.clear();
      this.importId = importId;
    }
    return importId;
  }

  /** One finding set per package (undefined: no findings), against the database as it is now. */
  async match(packages: readonly Package[]): Promise<(FindingSet | undefined)[]> {
    const sets = await this.matchAll(packages);
    return sets.map((set) => (set.findings.length > 0 ? set : undefined));
  }

  /** One match per package (empty sets included, with their warnings), against the database now. */
  async matchAll(packages: readonly Package[]): Promise<PackageMatch[]> {
    const generation = await this.generation();
    const keys = packages.map(matchKey);
    const found = new Map<string, PackageMatch | Promise<PackageMatch>>();
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
      const misses = entries.map(([, p]) => p);
      const batch =
        this.shared && generation !== undefined
          ? this.matchShared(generation, misses)
          : this.matchElsewhere(misses);
      for (const [i, [key]] of entries.entries()) {
        const one = batch.then((sets) => sets[i] as PackageMatch);
        this.inFlight.set(key, one);
        found.set(key, one);
      }
      const settle = (sets: PackageMatch[] | undefined): void => {
        for (const [i, [key]] of entries.entries()) {
          if (this.inFlight.get(key) === found.get(key)) this.inFlight.delete(key);
          // A newer import arrived meanwhile: these sets may be stale, do not keep them.
          if (sets && generation === this.importId) this.cache.set(key, sets[i] as PackageMatch);
        }
      };
      batch.then(settle, () => settle(undefined));
    }
    return Promise.all(keys.map((key) => found.get(key) as PackageMatch | Promise<PackageMatch>));
  }
}
