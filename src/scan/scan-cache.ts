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
 * - running containers' image layers and writable layers (`container-layers.ts`): a container is
 *   rescanned by walking its writable layer only.
 * The first two are dropped when the database's generation (its last import) changes.
 */
import type { DirectoryListings } from '../inventory/fs/directory-root-fs.js';
import type { Inventory } from '../inventory/types.js';
import type { VulnerabilityFinding } from '../matching/types.js';
import { PackageMatcher } from '../scanner/package-matcher.js';
import { LayerScans } from './container-layers.js';
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

/** Directory targets whose listings are kept for the signature walk (a few MB each). */
const LISTED_TARGETS = 8;

export class ScanCache {
  /** The database generation the target entries belong to; null before the first scan. */
  private generation: number | undefined | null = null;
  private matcher: PackageMatcher | undefined;
  private readonly targets = new Map<string, TargetEntry>();
  private readonly maxPackages: number;
  private readonly maxTargets: number;
  /** Containers' layers: what does not depend on the advisory database, so kept across its generations. */
  readonly layers = new LayerScans();
  private readonly listed = new Map<string, DirectoryListings>();

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

  /** The directory listings of the last signature walk of directory `ref` (see `DirectoryListings`). */
  listings(ref: string): DirectoryListings {
    const kept = this.listed.get(ref) ?? new Map();
    this.listed.delete(ref);
    if (this.listed.size >= LISTED_TARGETS) this.listed.delete(this.listed.keys().next().value as string);
    this.listed.set(ref, kept);
    return kept;
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
