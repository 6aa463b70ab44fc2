/**
 * What a long-lived scanning process keeps between scans so that a rescan costs in proportion to
 * what changed (see `scan()`):
 * - per target, the signature of what was scanned (an image archive's file identity, or the
 *   stat walk of a directory), its inventory and its findings, valid for one generation of the
 *   advisory database: an unchanged target against an unchanged database is answered without
 *   extracting or matching anything;
 * - per package, its findings: the scanner service's per-package match cache (`PackageMatcher`,
 *   keyed by match identity and database generation), one per advisory store: a changed
 *   inventory looks up and matches only the packages that are new.
 * Both are dropped when the database's generation (its last import) changes.
 */
import type { Inventory } from '../inventory/types.js';
import type { VulnerabilityFinding } from '../matching/types.js';
import { PackageMatcher } from '../scanner/package-matcher.js';
import type { AsyncAdvisoryStore } from '../vulndb/advisory-store.js';

export interface TargetEntry {
  signature: string;
  inventory: Inventory;
  found: VulnerabilityFinding[];
  warnings: string[];
}

export interface ScanCacheOptions {
  /** Packages whose matches are kept (default 100,000); past it the least recently used go. */
  maxPackages?: number;
  /** Targets kept (default 1,000). */
  maxTargets?: number;
}

export class ScanCache {
  /** The database generation the target entries belong to; null before the first scan. */
  private generation: number | undefined | null = null;
  private matcher: PackageMatcher | undefined;
  private readonly targets = new Map<string, TargetEntry>();
  private readonly maxPackages: number;
  private readonly maxTargets: number;

  constructor(options: ScanCacheOptions = {}) {
    this.maxPackages = options.maxPackages ?? 100_000;
    this.maxTargets = options.maxTargets ?? 1_000;
  }

  /**
   * The package matcher for `store`, with the database's generation as it is now: a new
   * generation (or another store) drops the target entries, and the matcher drops its matches.
   */
  async use(store: AsyncAdvisoryStore): Promise<PackageMatcher> {
    if (this.matcher?.advisories !== store) {
      this.matcher = new PackageMatcher(store, { maxPackages: this.maxPackages });
      this.generation = null;
    }
    const generation = await this.matcher.generation();
    if (generation !== this.generation) {
      this.generation = generation;
      this.targets.clear();
    }
    return this.matcher;
  }

  target(ref: string, signature: string): TargetEntry | undefined {
    const entry = this.targets.get(ref);
    return entry?.signature === signature ? entry : undefined;
  }

  setTarget(ref: string, entry: TargetEntry): void {
    this.targets.delete(ref);
    if (this.targets.size >= this.maxTargets) this.targets.delete(this.targets.keys().next().value as string);
    this.targets.set(ref, entry);
  }
}
