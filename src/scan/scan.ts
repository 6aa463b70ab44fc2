/**
 * `scan(target, options)`: open the target safely, take its inventory, match it against the
 * advisory store, apply ignores, and summarise. The library entry point behind `containment scan`.
 */
import { createHash } from 'node:crypto';
import { constants, statSync } from 'node:fs';
import { collectInventory } from '../inventory/collect.js';
import type { FileEntry } from '../inventory/context.js';
import { DirectoryRootFs } from '../inventory/fs/directory-root-fs.js';
import type { RootFsStat } from '../inventory/fs/root-fs.js';
import type { InventoryPhase } from '../inventory/collect.js';
import type { Inventory, Package } from '../inventory/types.js';
import { summarize } from '../matching/index.js';
import type { ComplianceThresholds, VulnerabilityFinding } from '../matching/types.js';
import { DEFAULT_THRESHOLDS } from '../matching/types.js';
import { applyIgnores } from '../report/ignore-file.js';
import type { IgnoreEntry } from '../report/ignore-file.js';
import { joinRuns } from '../scanner/finding-sets.js';
import { PackageMatcher } from '../scanner/package-matcher.js';
import type { ScanCache } from './scan-cache.js';
import type { ScanResult, ScanTarget } from './scan-result.js';
import { openTarget } from './targets.js';
import type { OpenedTarget } from './targets.js';
import type { AsyncAdvisoryStore } from '../vulndb/advisory-store.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';

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
  /**
   * Kept between scans by a long-lived caller: a rescan of an unchanged target against an
   * unchanged store then neither extracts nor matches, and a changed one matches only the
   * packages that are new (see `scan-cache.ts`).
   */
  cache?: ScanCache;
}

/**
 * Findings of every package, in inventory order, through the per-package match cache (one
 * lookup and match per distinct match identity; advisories fetched a batch of packages at a time
 * and dropped once matched). A ScanCache's matcher keeps the matches for the next scans; without
 * one, a matcher lives for this scan only.
 */
async function matchInventory(
  packages: readonly Package[],
  matcher: PackageMatcher,
): Promise<{ found: VulnerabilityFinding[]; warnings: string[] }> {
  const sets = await matcher.matchAll(packages);
  const warnings = new Set<string>();
  for (const set of sets) for (const w of set.warnings ?? []) warnings.add(w);
  return {
    found: joinRuns(
      packages,
      sets.map((s) => s.findings),
    ),
    warnings: [...warnings],
  };
}

/** The cache's matcher for the store (at the database's current generation), or a one-scan one. */
async function matcherFor(store: AsyncAdvisoryStore, cache: ScanCache | undefined): Promise<PackageMatcher> {
  return cache ? cache.use(store) : new PackageMatcher(store);
}

/** The packages that count toward findings: installed ones, and declared ones only when asked. */
function counted(packages: readonly Package[], includeDeclared: boolean | undefined): readonly Package[] {
  return includeDeclared ? packages : packages.filter((p) => p.provenance !== 'declared');
}

/** Ignores and summary over findings already matched: cheap, so redone on every scan. */
function finish(
  target: ScanTarget,
  inventory: Inventory,
  matched: { found: VulnerabilityFinding[]; warnings: string[] },
  options: Pick<ScanOptions, 'thresholds' | 'ignore' | 'now'> & { scanTime: string },
): ScanResult {
  const notes = [...inventory.notes];
  for (const w of matched.warnings) if (!notes.includes(w)) notes.push(w);
  const kept = applyIgnores(
    { vulnerabilities: matched.found, insecureConfigurations: inventory.insecureConfigurations },
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

/** Matching and summary for an inventory already taken: also what the server does on re-match. */
export async function evaluateInventory(
  target: ScanTarget,
  inventory: Inventory,
  store: AsyncAdvisoryStore,
  options: Pick<ScanOptions, 'thresholds' | 'ignore' | 'now' | 'cache' | 'includeDeclared'> & {
    scanTime: string;
  },
): Promise<ScanResult> {
  const matched = await matchInventory(
    counted(inventory.packages, options.includeDeclared),
    await matcherFor(store, options.cache),
  );
  return finish(target, inventory, matched, options);
}

/**
 * What identifies the content of a target for ScanCache, and the walk when one was taken. An
 * image archive is identified by its file (device, inode, size, times): it is read only when that
 * changed. A directory is identified by the stat walk of its tree: path, inode, type and mode,
 * owner, size, mtime and ctime of every entry (a directory's times cover entries added, removed
 * and links replaced; ctime, which no one can set back, covers a file rewritten with its size and
 * mtime kept, and a chmod). The walk is synchronous and compares raw numbers: on a root of 60,000
 * entries the stat calls are most of the cost; directories unchanged since the last walk are not
 * listed again (`DirectoryListings`), their entries are still stat'ed. Its entries are then reused for the inventory.
 * Running containers are signed by their layers (`container-layers.ts`), whose inventory comes
 * with the signature; other targets are not cached.
 */
async function targetSignature(
  opened: OpenedTarget,
  ref: string,
  cache: ScanCache,
): Promise<{ signature: string; files?: () => FileEntry[] } | undefined> {
  if (opened.target.kind === 'image-archive') {
    const s = statSync(ref, { bigint: true });
    return { signature: `archive:${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}` };
  }
  const { fs } = opened;
  if (opened.target.kind !== 'directory' || !(fs instanceof DirectoryRootFs)) return undefined;
  const rootStat = await fs.lstat('/');
  const paths: string[] = [];
  // The numbers go straight into one array: keeping 60,000 Stats objects alive through the walk
  // promotes them all to the old generation, and a long-lived process's RSS grows by that much.
  let numbers = new Float64Array(FIELDS * 4096);
  for (const { path, stats: s } of fs.walkStats('/', { listings: cache.listings(ref) })) {
    const at = paths.length * FIELDS;
    if (at + FIELDS > numbers.length) {
      const grown = new Float64Array(numbers.length * 2);
      grown.set(numbers);
      numbers = grown;
    }
    paths.push(path);
    numbers[at] = s.ino;
    numbers[at + 1] = s.mode;
    numbers[at + 2] = s.uid;
    numbers[at + 3] = s.gid;
    numbers[at + 4] = s.size;
    numbers[at + 5] = s.mtimeMs;
    numbers[at + 6] = s.ctimeMs;
    numbers[at + 7] = s.rdev;
  }
  const used = numbers.subarray(0, paths.length * FIELDS);
  const hash = createHash('sha256')
    .update(`/\0${rootStat?.mode ?? 0}\0${rootStat?.mtimeMs ?? 0}\n`)
    .update(paths.join('\0'))
    .update(new Uint8Array(used.buffer, used.byteOffset, used.byteLength));
  return {
    signature: `tree:${paths.length}:${hash.digest('hex')}`,
    files: () => paths.map((path, i) => ({ path, stat: statOf(used, i) })),
  };
}

/** Numbers kept per entry by the signature walk. */
const FIELDS = 8;

/** The RootFsStat of entry `i` of the signature walk: what `walk` would have given for it. */
function statOf(numbers: Float64Array, i: number): RootFsStat {
  const at = i * FIELDS;
  const mode = numbers[at + 1] as number;
  const format = mode & constants.S_IFMT;
  const device = format === constants.S_IFCHR || format === constants.S_IFBLK;
  return {
    type:
      format === constants.S_IFREG
        ? 'file'
        : format === constants.S_IFDIR
          ? 'directory'
          : format === constants.S_IFLNK
            ? 'symlink'
            : 'other',
    size: numbers[at + 4] as number,
    mode,
    uid: numbers[at + 2] as number,
    gid: numbers[at + 3] as number,
    mtimeMs: numbers[at + 5] as number,
    ...(device ? { rdev: numbers[at + 7] as number } : {}),
  };
}

/** The process whose root a container or `pid:` target is. */
function processOf(target: ScanTarget): number | undefined {
  if (target.kind === 'container') return target.container?.pid;
  if (target.kind === 'process') return Number(target.ref.slice('pid:'.length));
  return undefined;
}

export async function scan(targetRef: string, options: ScanOptions = {}): Promise<ScanResult> {
  const scanTime = (options.now ?? new Date()).toISOString();
  // Open the database first: a missing database should fail before minutes of reading.
  const store: AsyncAdvisoryStore =
    options.store ?? openSqliteAdvisoryStore(options.dbPath ?? '', { readonly: true });
  const { cache } = options;
  try {
    const matcher = await matcherFor(store, cache);
    options.onPhase?.('open', targetRef);
    const opened = await openTarget(targetRef, {
      engineSocket: options.engineSocket,
      tmpDir: options.tmpDir,
    });
    try {
      const pid = processOf(opened.target);
      const layered =
        cache && pid !== undefined
          ? await cache.layers.inventory({
              pid,
              name: targetRef,
              ...(opened.image ? { image: opened.image } : {}),
            })
          : undefined;
      const signed = cache && !layered ? await targetSignature(opened, targetRef, cache) : undefined;
      const signature = layered?.signature ?? signed?.signature;
      const hit = signature !== undefined && cache?.target(targetRef, signature);
      if (hit) return finish(opened.target, hit.inventory, hit, { ...options, scanTime });
      const inventory =
        layered?.inventory ??
        (await collectInventory(opened.fs, {
          image: opened.image,
          onPhase: options.onPhase,
          ...(signed?.files ? { files: signed.files() } : {}),
        }));
      options.onPhase?.('match');
      const matched = await matchInventory(counted(inventory.packages, options.includeDeclared), matcher);
      if (signature !== undefined) cache?.setTarget(targetRef, { signature, inventory, ...matched });
      return finish(opened.target, inventory, matched, { ...options, scanTime });
    } finally {
      await opened.cleanup();
    }
  } finally {
    if (!options.store) await store.close();
  }
}
