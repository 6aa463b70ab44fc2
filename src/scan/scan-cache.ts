/**
 * What a long-lived scanning process keeps between scans so that a rescan costs in proportion to
 * what changed (see `scan()`):
 * - per target, the signature of what was scanned (an image archive's file identity, or the
 *   stat walk of a directory), its inventory and its findings, valid for one state of the
 *   advisory store: an unchanged target against an unchanged store is answered without
 *   extracting or matching anything;
 * - per package (the whole package record, so every field matching reads is part of the key),
 *   its findings for that store state: a changed inventory looks up and matches only the
 *   packages that are new.
 * Both are dropped when the store's state (its last import) changes. Pure: no I/O.
 */
import type { Inventory, Package } from '../inventory/types.js';
import type { VulnerabilityFinding } from '../matching/types.js';

export interface PackageMatch {
  findings: VulnerabilityFinding[];
  /** Records that could not be evaluated for this package (see MatchOptions.onWarning). */
  warnings: string[];
}

export interface TargetEntry {
  signature: string;
  inventory: Inventory;
  found: VulnerabilityFinding[];
  warnings: string[];
}

export interface ScanCacheOptions {
  /** Packages whose matches are kept (default 200,000); past it the oldest are dropped. */
  maxPackages?: number;
  /** Targets kept (default 1,000). */
  maxTargets?: number;
}

export class ScanCache {
  private storeState: string | undefined;
  private readonly packages = new Map<string, PackageMatch>();
  private readonly targets = new Map<string, TargetEntry>();
  private readonly maxPackages: number;
  private readonly maxTargets: number;

  constructor(options: ScanCacheOptions = {}) {
    this.maxPackages = options.maxPackages ?? 200_000;
    this.maxTargets = options.maxTargets ?? 1_000;
  }

  /** Sets the store state the cached matches belong to; a new state drops them all. */
  useStoreState(state: string): void {
    if (state === this.storeState) return;
    this.storeState = state;
    this.packages.clear();
    this.targets.clear();
  }

  static packageKey(pkg: Package): string {
    return JSON.stringify(pkg);
  }

  packageMatch(key: string): PackageMatch | undefined {
    return this.packages.get(key);
  }

  setPackageMatch(key: string, match: PackageMatch): void {
    if (this.packages.size >= this.maxPackages) {
      this.packages.delete(this.packages.keys().next().value as string);
    }
    this.packages.set(key, match);
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
