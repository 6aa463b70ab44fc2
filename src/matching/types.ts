import type { InsecureConfiguration, Package, Severity } from '../inventory/types.js';

/** One vulnerability finding: a package affected by one advisory group (aliases merged). */
export interface VulnerabilityFinding {
  /** Preferred id of the group (a CVE when the group has one, else the first record id). */
  id: string;
  /** Every other id of the group: record ids and their aliases (DSA/DLA/USN/GHSA/CVE …), sorted. */
  aliases: string[];
  summary?: string;
  package: Pick<Package, 'name' | 'version' | 'ecosystem' | 'source' | 'location' | 'purl'>;
  /** Lowest version that fixes it on this package's branch, when known. */
  fixedVersion?: string;
  severity: Severity;
  /** Base score (0–10) computed from a CVSS vector, or from the record's own rating. */
  score?: number;
  /** Where the severity came from: `CVSS_V3`, `CVSS_V4`, or `database_specific`. */
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
  compliance: { passed: boolean; thresholds: ComplianceThresholds; violations: string[] };
}

export type { InsecureConfiguration };
