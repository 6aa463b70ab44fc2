/** Plain data produced by the inventory and consumed by matching and reporting. No I/O here. */

export type Severity = 'CRITICAL' | 'HIGH' | 'MEDIUM' | 'LOW' | 'UNKNOWN';
export const SEVERITIES: readonly Severity[] = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'];

export interface OsInfo {
  /** `ID` from os-release, e.g. `debian`, `ubuntu`, `alpine`, `rhel`. */
  id: string;
  versionId?: string;
  versionCodename?: string;
  prettyName?: string;
  /** The OSV ecosystem of the distribution's packages, e.g. `Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.20`. */
  ecosystem?: string;
}

export interface Package {
  name: string;
  version: string;
  /** OSV ecosystem name, with the release suffix for distributions (`Debian:12`, `npm`, `PyPI`, `Go`, `Maven`). */
  ecosystem: string;
  /**
   * Source package (dpkg `Source:`, apk origin, rpm source rpm name) with its own version where
   * the database gives one. Distribution advisories name source packages.
   */
  source?: { name: string; version: string };
  /** Package URL (purl), for SBOM output. */
  purl?: string;
  /** Path inside the scanned root where the package was recorded (absolute, `/`-separated). */
  location: string;
  /** Id of the extractor that found it: `dpkg`, `apk`, `rpm`, `npm`, `python`, `go-binary`, `java`. */
  extractor: string;
  /**
   * `declared`: only a manifest names it (a lockfile with no installed tree beside it, e.g. a
   * vendored project's `package-lock.json` without `node_modules`); it is listed but does not count
   * toward findings unless asked (`--include-declared`). Absent: installed.
   */
  provenance?: 'declared';
}

export interface InsecureConfiguration {
  /** Stable id, e.g. `remote_shell_installed`. */
  id: string;
  severity: Severity;
  title: string;
  /** Paths inside the root (or image-config fields such as `config.User`) that prove it. */
  evidence: string[];
  details?: string;
}

/**
 * Why a scan may have missed packages. Stable codes (documented in docs/scanning.md): a database
 * that exists but could not be read as one makes the inventory `incomplete`, never silently empty.
 */
export const GAP_CODES = [
  /** A package database path is a FIFO, device, socket or directory: it was not opened. */
  'PACKAGE_DB_NOT_A_FILE',
  /** It exists but cannot be opened or read (permissions, I/O error, a link that leads nowhere). */
  'PACKAGE_DB_UNREADABLE',
  /** Its content is not a database of its kind (not SQLite, invalid JSON, no records at all). */
  'PACKAGE_DB_CORRUPT',
  /** It ends in the middle of a record. */
  'PACKAGE_DB_TRUNCATED',
  /** It is larger than a format that cannot be streamed may be (rpm SQLite, lockfiles, archives). */
  'PACKAGE_DB_TOO_LARGE',
  /** A database format that is recognised but not read (rpm Berkeley DB / NDB). */
  'PACKAGE_DB_UNSUPPORTED',
  /** One record is over the per-record limit and was skipped. */
  'PACKAGE_RECORD_TOO_LARGE',
  /** One record is malformed and was skipped. */
  'PACKAGE_RECORD_INVALID',
  /** An extractor failed as a whole. */
  'EXTRACTOR_FAILED',
] as const;
export type GapCode = (typeof GAP_CODES)[number];

export interface InventoryGap {
  code: GapCode;
  /** Extractor id (`dpkg`, `npm` …). */
  extractor: string;
  /** In-root path of the database or record's file. */
  path: string;
  message: string;
}

/** `incomplete` when at least one gap was recorded: packages may be missing from the inventory. */
export type Completeness = 'complete' | 'incomplete';

export interface Inventory {
  os?: OsInfo;
  packages: Package[];
  insecureConfigurations: InsecureConfiguration[];
  /** Things a user should know about the scan: unsupported databases, skipped oversized files … */
  notes: string[];
  completeness: Completeness;
  /** Why the inventory is incomplete (empty when complete); each also appears in `notes`. */
  gaps: InventoryGap[];
}
