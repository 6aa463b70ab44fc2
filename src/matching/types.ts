import type { Completeness, InsecureConfiguration, Package, Severity } from '../inventory/types.js';

/** One vulnerability finding: a package affected by one advisory group (aliases merged). */
export interface VulnerabilityFinding {
  /** Preferred id of the group: its CVE when it has exactly one, else the smallest record id. */
  id: string;
  /** Every other id of the group: record ids and their aliases (DSA/DLA/USN/GHSA/CVE …), sorted. */
  aliases: string[];
  /** The records' `upstream` ids (e.g. the CVEs a USN or DLA fixes); shown, never grouped on. */
  upstream?: string[];
  summary?: string;
  package: Pick<Package, 'name' | 'version' | 'ecosystem' | 'source' | 'location' | 'purl'>;
  /**
   * The version that fixes it on this package's branch: the first fix above the installed version;
   * across a group's records the highest (all must be cleared). Absent when any record has none.
   */
  fixedVersion?: string;
  severity: Severity;
  /** CVSS base score (0–10) computed from a vector; absent when the severity is a named rating. */
  score?: number;
  /**
   * Where the severity came from: `CVSS_V4`, `CVSS_V3`, a named rating's type (`Ubuntu`), or the
   * record's `database_specific` / `ecosystem_specific` rating.
   */
  severitySource?: string;
  references?: string[];
}

export interface ComplianceThresholds {
  CRITICAL: number;
  HIGH: number;
  MEDIUM: number;
  LOW: number;
}

export const DEFAULT_THRESHOLDS: ComplianceThresholds = { CRITICAL: 0, HIGH: 5, MEDIUM: 20, LOW: 50 };

export interface ScanSummary {
  counts: Record<Severity, number>;
  /** Insecure configurations by severity. */
  configurationCounts: Record<Severity, number>;
  /** 0 (no risk) … 100 (worst); documented in the README. */
  riskScore: number;
  /** Whether the scan read every package database it found; absent (older results) = complete. */
  completeness?: Completeness;
  compliance: {
    /** True only for the `pass` verdict. */
    passed: boolean;
    /**
     * `pass`, `fail` (a threshold exceeded), or `unknown`: the scan is incomplete (a package
     * database could not be read) and no threshold is exceeded by what was seen. Absent in results
     * stored before it existed, where `passed` decides.
     */
    verdict?: ComplianceVerdict;
    thresholds: ComplianceThresholds;
    violations: string[];
  };
}

export type ComplianceVerdict = 'pass' | 'fail' | 'unknown';

export type { InsecureConfiguration };
