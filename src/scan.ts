/**
 * `scan(target, options)`: open the target safely, take its inventory, match it against the
 * advisory store, apply ignores, and summarise. The library entry point behind `containment scan`.
 */
import { collectInventory } from './inventory/collect.js';
import type { InventoryPhase } from './inventory/collect.js';
import type { Inventory } from './inventory/types.js';
import { matchIdentity, matchPackages, summarize } from './matching/index.js';
import type { ComplianceThresholds } from './matching/types.js';
import { DEFAULT_THRESHOLDS } from './matching/types.js';
import { applyIgnores } from './report/ignore-file.js';
import type { IgnoreEntry } from './report/ignore-file.js';
import type { ScanResult, ScanTarget } from './scan-result.js';
import { openTarget } from './targets.js';
import type { AsyncAdvisoryStore } from './vulndb/advisory-store.js';
import { openSqliteAdvisoryStore } from './vulndb/sqlite-store.js';

export type ScanPhase = 'open' | InventoryPhase | 'match';

export interface ScanOptions {
  /** An open advisory store (any engine); otherwise `dbPath` is opened read-only for the scan. */
  store?: AsyncAdvisoryStore;
  dbPath?: string;
  thresholds?: ComplianceThresholds;
  ignore?: readonly IgnoreEntry[];
  /** Clock for ignore expiry and the scan time (tests). */
  now?: Date;
  /** Count packages only a manifest declares (`provenance: declared`) toward findings too. */
  includeDeclared?: boolean;
  engineSocket?: string;
  tmpDir?: string;
  onPhase?: (phase: ScanPhase, detail?: string) => void;
}

/** Matching and summary for an inventory already taken: also what the server does on re-match. */
export async function evaluateInventory(
  target: ScanTarget,
  inventory: Inventory,
  store: AsyncAdvisoryStore,
  options: Pick<ScanOptions, 'thresholds' | 'ignore' | 'now' | 'includeDeclared'> & { scanTime: string },
): Promise<ScanResult> {
  const notes = [...inventory.notes];
  const counted = options.includeDeclared
    ? inventory.packages
    : inventory.packages.filter((p) => p.provenance !== 'declared');
  // Every package's candidates in one call: one round trip for a database server, not one per package.
  const candidates = await store.lookupMany(
    counted.map((pkg) => {
      const { ecosystem, name } = matchIdentity(pkg);
      return { ecosystem, name };
    }),
  );
  const byPackage = new Map(counted.map((pkg, i) => [pkg, candidates[i] ?? []]));
  const found = matchPackages(counted, (pkg) => byPackage.get(pkg) ?? [], {
    onWarning: (message) => notes.push(message),
  });
  const kept = applyIgnores(
    { vulnerabilities: found, insecureConfigurations: inventory.insecureConfigurations },
    options.ignore ?? [],
    options.now ?? new Date(),
  );
  notes.push(...kept.notes);
  return {
    schemaVersion: 1,
    target,
    scanTime: options.scanTime,
    os: inventory.os,
    ecosystem: inventory.os?.ecosystem,
    packages: inventory.packages,
    vulnerabilities: kept.vulnerabilities,
    insecureConfigurations: kept.insecureConfigurations,
    ignored: kept.ignored,
    summary: summarize(
      kept.vulnerabilities,
      kept.insecureConfigurations,
      options.thresholds ?? DEFAULT_THRESHOLDS,
      inventory.completeness,
    ),
    notes,
    completeness: inventory.completeness,
    gaps: inventory.gaps,
  };
}

export async function scan(targetRef: string, options: ScanOptions = {}): Promise<ScanResult> {
  const scanTime = (options.now ?? new Date()).toISOString();
  // Open the database first: a missing database should fail before minutes of unpacking.
  const store: AsyncAdvisoryStore =
    options.store ?? openSqliteAdvisoryStore(options.dbPath ?? '', { readonly: true });
  try {
    options.onPhase?.('open', targetRef);
    const opened = await openTarget(targetRef, {
      engineSocket: options.engineSocket,
      tmpDir: options.tmpDir,
    });
    try {
      const inventory = await collectInventory(opened.fs, { image: opened.image, onPhase: options.onPhase });
      options.onPhase?.('match');
      return await evaluateInventory(opened.target, inventory, store, { ...options, scanTime });
    } finally {
      await opened.cleanup();
    }
  } finally {
    if (!options.store) await store.close();
  }
}
