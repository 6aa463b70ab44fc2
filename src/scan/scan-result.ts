/**
 * The result of one scan: what `containment scan --format json` prints and what the library's
 * `scan()` returns. This shape is documented in the README and stable: fields may be added,
 * never renamed or removed, without bumping `schemaVersion`.
 */
import type {
  Completeness,
  InsecureConfiguration,
  InventoryGap,
  OsInfo,
  Package,
} from '../inventory/types.js';
import type { ScanSummary, VulnerabilityFinding } from '../matching/types.js';

export type TargetKind = 'directory' | 'image-archive' | 'container' | 'process';

export interface ScanTarget {
  kind: TargetKind;
  /** What the user asked for: a path, `container:<name>`, `pid:<n>`. */
  ref: string;
  /** Image name/tag from the archive's manifest or the container's image, when known. */
  image?: string;
  /** Container id / name when the target is a container. */
  container?: { id: string; name?: string; pid?: number };
}

/** An advisory the ignore file suppressed: kept in the output so nothing disappears silently. */
export interface IgnoredFinding {
  id: string;
  reason: string;
  expires?: string;
  /** `vulnerability` or `configuration`. */
  kind: 'vulnerability' | 'configuration';
  package?: { name: string; version: string };
}

export interface ScanResult {
  schemaVersion: 1;
  target: ScanTarget;
  /** ISO-8601 time the scan started. */
  scanTime: string;
  os?: OsInfo;
  /** OSV ecosystem of the OS packages (`Debian:12` …), repeated from `os.ecosystem` for convenience. */
  ecosystem?: string;
  packages: Package[];
  vulnerabilities: VulnerabilityFinding[];
  insecureConfigurations: InsecureConfiguration[];
  ignored: IgnoredFinding[];
  summary: ScanSummary;
  notes: string[];
  /**
   * `incomplete` when a package database exists but could not be read as one (see `gaps` and
   * docs/scanning.md): packages may be missing, and the compliance verdict is then never `pass`.
   */
  completeness: Completeness;
  /** Why the scan is incomplete, with stable codes; empty when complete. */
  gaps: InventoryGap[];
}
