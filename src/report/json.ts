/**
 * `--format json`: the ScanResult itself, with every object's keys in the order the types declare
 * them, whatever order the producers built them in, so that output diffs stay small and stable.
 * Keys a newer producer adds that this file does not know yet come after the known ones.
 */
import { SEVERITIES } from '../inventory/types.js';
import type { InsecureConfiguration, OsInfo, Package, Severity } from '../inventory/types.js';
import type { ComplianceThresholds, ScanSummary, VulnerabilityFinding } from '../matching/types.js';
import type { IgnoredFinding, ScanResult, ScanTarget } from '../scan/scan-result.js';

/** Key order of `T`; a `Record` over `keyof T` makes the compiler insist that every key is listed. */
type KeyOrder<T> = Record<keyof T, null>;

const RESULT_KEYS: KeyOrder<ScanResult> = {
  schemaVersion: null,
  target: null,
  scanTime: null,
  os: null,
  ecosystem: null,
  packages: null,
  vulnerabilities: null,
  insecureConfigurations: null,
  ignored: null,
  summary: null,
  notes: null,
  completeness: null,
  gaps: null,
};
const TARGET_KEYS: KeyOrder<ScanTarget> = { kind: null, ref: null, image: null, container: null };
const CONTAINER_KEYS: KeyOrder<NonNullable<ScanTarget['container']>> = { id: null, name: null, pid: null };
const OS_KEYS: KeyOrder<OsInfo> = {
  id: null,
  versionId: null,
  versionCodename: null,
  prettyName: null,
  ecosystem: null,
};
const PACKAGE_KEYS: KeyOrder<Package> = {
  name: null,
  version: null,
  ecosystem: null,
  source: null,
  purl: null,
  location: null,
  extractor: null,
  provenance: null,
};
const NAME_VERSION_KEYS: KeyOrder<{ name: string; version: string }> = { name: null, version: null };
const FINDING_KEYS: KeyOrder<VulnerabilityFinding> = {
  id: null,
  aliases: null,
  upstream: null,
  summary: null,
  package: null,
  fixedVersion: null,
  severity: null,
  score: null,
  severitySource: null,
  references: null,
};
const CONFIGURATION_KEYS: KeyOrder<InsecureConfiguration> = {
  id: null,
  severity: null,
  title: null,
  evidence: null,
  details: null,
};
const IGNORED_KEYS: KeyOrder<IgnoredFinding> = {
  id: null,
  reason: null,
  expires: null,
  kind: null,
  package: null,
};
const SUMMARY_KEYS: KeyOrder<ScanSummary> = {
  counts: null,
  configurationCounts: null,
  riskScore: null,
  completeness: null,
  compliance: null,
};
const COMPLIANCE_KEYS: KeyOrder<ScanSummary['compliance']> = {
  passed: null,
  verdict: null,
  thresholds: null,
  violations: null,
};
const SEVERITY_KEYS = Object.fromEntries(SEVERITIES.map((s) => [s, null])) as KeyOrder<
  Record<Severity, number>
>;
const THRESHOLD_KEYS: KeyOrder<ComplianceThresholds> = {
  CRITICAL: null,
  HIGH: null,
  MEDIUM: null,
  LOW: null,
};

/** A copy of `obj` with `order`'s keys first, then any others in their original order. */
function ordered<T extends object>(
  obj: T,
  order: KeyOrder<T>,
  nested: { [K in keyof T]?: (value: NonNullable<T[K]>) => unknown } = {},
): T {
  const out: Record<string, unknown> = {};
  const keys = [...Object.keys(order), ...Object.keys(obj).filter((k) => !(k in order))];
  for (const key of keys) {
    const value = (obj as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const transform = (nested as Record<string, ((v: unknown) => unknown) | undefined>)[key];
    out[key] = transform ? transform(value) : value;
  }
  return out as T;
}

const nameVersion = (v: { name: string; version: string }): unknown => ordered(v, NAME_VERSION_KEYS);

/** The ScanResult with its documented key order (see module comment). */
export function canonicalScanResult(result: ScanResult): ScanResult {
  return ordered(result, RESULT_KEYS, {
    target: (t) => ordered(t, TARGET_KEYS, { container: (c) => ordered(c, CONTAINER_KEYS) }),
    os: (os) => ordered(os, OS_KEYS),
    packages: (packages) => packages.map((p) => ordered(p, PACKAGE_KEYS, { source: nameVersion })),
    vulnerabilities: (findings) =>
      findings.map((f) =>
        ordered(f, FINDING_KEYS, {
          package: (p) => ordered(p, PACKAGE_KEYS as KeyOrder<typeof p>, { source: nameVersion }),
        }),
      ),
    insecureConfigurations: (configs) => configs.map((c) => ordered(c, CONFIGURATION_KEYS)),
    ignored: (ignored) => ignored.map((i) => ordered(i, IGNORED_KEYS, { package: nameVersion })),
    summary: (s) =>
      ordered(s, SUMMARY_KEYS, {
        counts: (c) => ordered(c, SEVERITY_KEYS),
        configurationCounts: (c) => ordered(c, SEVERITY_KEYS),
        compliance: (c) => ordered(c, COMPLIANCE_KEYS, { thresholds: (t) => ordered(t, THRESHOLD_KEYS) }),
      }),
  });
}

export function renderJson(result: ScanResult): string {
  return `${JSON.stringify(canonicalScanResult(result), null, 2)}\n`;
}
