/** Shared ordering of findings for the human and machine reports: worst first, then by name. */
import type { InsecureConfiguration } from '../inventory/types.js';
import { SEVERITY_RANK } from '../matching/severity.js';
import type { VulnerabilityFinding } from '../matching/types.js';

/** Code-unit order: the same on every machine, unlike `localeCompare`. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Severity (worst first), then package name, then id; version and location break ties. */
export function sortFindings(findings: readonly VulnerabilityFinding[]): VulnerabilityFinding[] {
  return [...findings].sort(
    (a, b) =>
      SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
      compareText(a.package.name, b.package.name) ||
      compareText(a.id, b.id) ||
      compareText(a.package.version, b.package.version) ||
      compareText(a.package.location, b.package.location),
  );
}

/** Severity (worst first), then id. */
export function sortConfigurations(configs: readonly InsecureConfiguration[]): InsecureConfiguration[] {
  return [...configs].sort(
    (a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || compareText(a.id, b.id),
  );
}
