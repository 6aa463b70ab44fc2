/**
 * Scan summary: counts, risk score and compliance verdict. Pure: no I/O.
 */
import { ContainmentError, ErrorCodes } from '../errors.js';
import { SEVERITIES } from '../inventory/types.js';
import type { Completeness, InsecureConfiguration, Severity } from '../inventory/types.js';
import { DEFAULT_THRESHOLDS } from './types.js';
import type { ComplianceThresholds, ComplianceVerdict, ScanSummary, VulnerabilityFinding } from './types.js';

/** Points per finding or insecure configuration in the risk score. */
export const RISK_WEIGHTS: Readonly<Record<Severity, number>> = {
  CRITICAL: 10,
  HIGH: 5,
  MEDIUM: 2,
  LOW: 1,
  UNKNOWN: 1,
};

const THRESHOLDED: readonly (keyof ComplianceThresholds)[] = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];

export interface ExceededThreshold {
  severity: keyof ComplianceThresholds;
  total: number;
  threshold: number;
}

/**
 * The compliance rule: each thresholded severity (UNKNOWN is not) fails when its total of
 * vulnerabilities plus insecure configurations EXCEEDS its threshold; a total equal to it passes.
 */
export function exceededThresholds(
  totals: Readonly<Partial<Record<Severity, number>>>,
  thresholds: ComplianceThresholds,
): ExceededThreshold[] {
  return THRESHOLDED.map((severity) => ({
    severity,
    total: totals[severity] ?? 0,
    threshold: thresholds[severity],
  })).filter((e) => e.total > e.threshold);
}

/**
 * The verdict from the exceeded thresholds and whether the scan saw everything. An exceeded
 * threshold fails whatever else (more packages can only add findings); with none exceeded, an
 * incomplete scan is `unknown`: a pass would be a guess, and a hostile container could make itself
 * look clean by breaking its own package database.
 */
export function complianceVerdict(
  exceeded: readonly ExceededThreshold[],
  completeness: Completeness = 'complete',
): ComplianceVerdict {
  if (exceeded.length > 0) return 'fail';
  return completeness === 'complete' ? 'pass' : 'unknown';
}

function countBySeverity(items: readonly { severity: Severity }[]): Record<Severity, number> {
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const item of items) counts[item.severity] += 1;
  return counts;
}

/**
 * Summarises one scan.
 *
 * - `counts`: vulnerability findings by severity (one per package and vulnerability, so the same
 *   CVE in two packages counts twice); `configurationCounts`: insecure configurations likewise.
 * - Risk score (0–100, integer):
 *   `riskScore = min(100, Σ weight(severity))` over every finding AND insecure configuration,
 *   with weights CRITICAL 10, HIGH 5, MEDIUM 2, LOW 1, UNKNOWN 1. Ten critical issues, or twenty
 *   high ones, saturate it; a clean scan scores 0.
 * - Compliance: for each of CRITICAL/HIGH/MEDIUM/LOW, vulnerabilities plus insecure
 *   configurations of that severity are compared with the threshold; the scan fails when a count
 *   EXCEEDS its threshold (a count equal to it passes), with one violation string per exceeded
 *   threshold. UNKNOWN is not thresholded. `thresholds` may be partial (the rest are defaults);
 *   each must be a non-negative number (`Infinity` = no limit). The verdict is `complianceVerdict`:
 *   an incomplete scan that exceeds nothing is `unknown`, and `passed` is false.
 */
export function summarize(
  findings: readonly VulnerabilityFinding[],
  insecureConfigurations: readonly InsecureConfiguration[],
  thresholds: Partial<ComplianceThresholds> = DEFAULT_THRESHOLDS,
  completeness: Completeness = 'complete',
): ScanSummary {
  const effective: ComplianceThresholds = { ...DEFAULT_THRESHOLDS };
  for (const severity of THRESHOLDED) {
    const value = thresholds[severity];
    if (value === undefined) continue;
    if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
      throw new ContainmentError(
        ErrorCodes.CONFIG_INVALID,
        `compliance threshold for ${severity} must be a non-negative number, got ${String(value)}`,
      );
    }
    effective[severity] = value;
  }

  const counts = countBySeverity(findings);
  const configurationCounts = countBySeverity(insecureConfigurations);
  let points = 0;
  for (const severity of SEVERITIES) {
    points += RISK_WEIGHTS[severity] * (counts[severity] + configurationCounts[severity]);
  }

  const totals = Object.fromEntries(
    SEVERITIES.map((severity) => [severity, counts[severity] + configurationCounts[severity]]),
  ) as Record<Severity, number>;
  const exceeded = exceededThresholds(totals, effective);
  const verdict = complianceVerdict(exceeded, completeness);
  const violations = exceeded.map(
    ({ severity, total, threshold }) =>
      `${severity}: ${total} exceeds the threshold of ${threshold} ` +
      `(${counts[severity]} vulnerabilities, ${configurationCounts[severity]} insecure configurations)`,
  );

  return {
    counts,
    configurationCounts,
    riskScore: Math.min(100, points),
    completeness,
    compliance: { passed: verdict === 'pass', verdict, thresholds: effective, violations },
  };
}
