/**
 * Posture scores: 100 minus the weighted deductions of the findings (the scanner's RISK_WEIGHTS:
 * CRITICAL 10, HIGH 5, MEDIUM 2, LOW 1), never below 0. Per namespace (findings on objects in it)
 * and for the whole input. Pure.
 */
import { SEVERITIES } from '../inventory/types.js';
import type { Severity } from '../inventory/types.js';
import { RISK_WEIGHTS } from '../matching/summary.js';
import type { PodSecurityLevel } from './pod-security.js';
import type { NamespaceScore, PostureFinding, PostureReport } from './types.js';

export function postureScore(findings: readonly { severity: Severity }[]): number {
  let points = 0;
  for (const f of findings) points += RISK_WEIGHTS[f.severity];
  return Math.max(0, 100 - points);
}

const SEVERITY_RANK = Object.fromEntries(SEVERITIES.map((s, i) => [s, i])) as Record<Severity, number>;

/** Findings ordered by severity, then namespace, object and path, so output is stable. */
export function sortFindings(findings: readonly PostureFinding[]): PostureFinding[] {
  // Keys built once, not per comparison: a cluster has tens of thousands of findings.
  const keyed = findings.map((f) => ({
    f,
    rank: SEVERITY_RANK[f.severity],
    key: `${f.object.namespace ?? ''}\u0000${f.object.kind}\u0000${f.object.name}\u0000${f.path}\u0000${f.control}`,
  }));
  keyed.sort((a, b) => a.rank - b.rank || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.f);
}

export function buildReport(input: {
  level: PodSecurityLevel;
  findings: readonly PostureFinding[];
  /** Namespaces to score even when clean (every namespace that holds an evaluated object). */
  namespaces: Iterable<string>;
  evaluated: number;
  warnings?: string[];
}): PostureReport {
  const byNamespace = new Map<string, PostureFinding[]>();
  for (const ns of input.namespaces) byNamespace.set(ns, []);
  for (const f of input.findings) {
    const ns = f.object.namespace;
    if (ns === undefined) continue;
    const list = byNamespace.get(ns) ?? [];
    list.push(f);
    byNamespace.set(ns, list);
  }
  const namespaces: NamespaceScore[] = [...byNamespace.entries()]
    .map(([namespace, list]) => ({ namespace, score: postureScore(list), findings: list.length }))
    .sort((a, b) => a.score - b.score || (a.namespace < b.namespace ? -1 : 1));
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of input.findings) counts[f.severity] += 1;
  return {
    level: input.level,
    score: postureScore(input.findings),
    namespaces,
    counts,
    evaluated: input.evaluated,
    findings: sortFindings(input.findings),
    warnings: input.warnings ?? [],
  };
}
