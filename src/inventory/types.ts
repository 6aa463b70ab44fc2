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

export interface Inventory {
  os?: OsInfo;
  packages: Package[];
  insecureConfigurations: InsecureConfiguration[];
  /** Things a user should know about the scan: unsupported databases, skipped oversized files … */
  notes: string[];
}
