/**
 * Severity of an OSV record for one affected package. Pure: no I/O.
 *
 * Order of evidence (the first that yields something wins):
 * 1. CVSS vectors in `affected[].severity`, else in the record's `severity` (the schema says a
 *    per-package `severity` replaces the record-level one). When a record gives both, CVSS v3.x
 *    is preferred over v4.0: the publishers' own ratings are still calibrated on v3 (every GHSA
 *    record in the test data carrying both agrees with its v3 rating, while v4 rates three of them
 *    a band lower), and thresholds users set were learnt on v3 scores. v4 is used when it is the
 *    only vector. Several vectors of one version (NVD's and the CNA's) → the highest base score.
 * 2. A named rating in those same arrays (`{type: "Ubuntu", score: "medium"}`).
 * 3. The database's own rating: `database_specific.severity` (GHSA: LOW/MODERATE/HIGH/CRITICAL),
 *    `ecosystem_specific.severity` (OSS-Fuzz), Debian's `urgency` — affected entry before record.
 * 4. Ubuntu USNs carry their per-CVE assessments in `affected[].database_specific.cves_map`;
 *    a USN is as severe as its worst CVE (vectors first, then Ubuntu's priorities).
 * Otherwise UNKNOWN.
 *
 * The score is the CVSS BASE score (v4: CVSS-B, i.e. threat/environmental metrics in the vector
 * are ignored), computed by ae-cvss-calculator after checking that every base metric is present
 * (the library returns 0 instead of failing for incomplete vectors). A 0.0 base score ("None")
 * is rated LOW: the advisory still names this package and should stay visible.
 */
import cvss from 'ae-cvss-calculator';
import type { Severity } from '../inventory/types.js';
import type { OsvAffected, OsvRecord, OsvSeverity } from '../vulndb/osv.js';

export interface SeverityAssessment {
  severity: Severity;
  /** CVSS base score 0–10; absent when the severity comes from a named rating. */
  score?: number;
  /** `CVSS_V4`, `CVSS_V3`, `Ubuntu`, `database_specific`, `ecosystem_specific` … */
  source?: string;
}

/** Rank for ordering: higher is worse. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = {
  CRITICAL: 4,
  HIGH: 3,
  MEDIUM: 2,
  LOW: 1,
  UNKNOWN: 0,
};

/** CVSS v3.x/v4.0 qualitative rating scale (0.0 "None" → LOW, see above). */
export function ratingForScore(score: number): Severity {
  if (score >= 9) return 'CRITICAL';
  if (score >= 7) return 'HIGH';
  if (score >= 4) return 'MEDIUM';
  return 'LOW';
}

// Mandatory base metrics and their allowed values, per CVSS specification.
const V3_BASE: Record<string, string> = {
  AV: 'NALP',
  AC: 'LH',
  PR: 'NLH',
  UI: 'NR',
  S: 'UC',
  C: 'NLH',
  I: 'NLH',
  A: 'NLH',
};
const V4_BASE: Record<string, string> = {
  AV: 'NALP',
  AC: 'LH',
  AT: 'NP',
  PR: 'NLH',
  UI: 'NPA',
  VC: 'HLN',
  VI: 'HLN',
  VA: 'HLN',
  SC: 'HLN',
  SI: 'HLN',
  SA: 'HLN',
};

type BaseScore = { score: number; version: 3 | 4 } | undefined;

// Scoring costs 40–130 µs per vector and the same vectors recur across a feed: memoise (bounded).
const scoreCache = new Map<string, BaseScore>();
const SCORE_CACHE_LIMIT = 20_000;

/** Base score of a CVSS v3.0/3.1/4.0 vector, or undefined when the vector is malformed. */
export function cvssBaseScore(vector: string): BaseScore {
  if (scoreCache.has(vector)) return scoreCache.get(vector);
  const result = computeBaseScore(vector);
  if (scoreCache.size >= SCORE_CACHE_LIMIT) scoreCache.clear();
  scoreCache.set(vector, result);
  return result;
}

function computeBaseScore(vector: string): BaseScore {
  const parts = vector.trim().split('/');
  const prefix = parts.shift();
  const version = prefix === 'CVSS:4.0' ? 4 : prefix === 'CVSS:3.1' || prefix === 'CVSS:3.0' ? 3 : 0;
  if (version === 0) return undefined;
  const required = version === 4 ? V4_BASE : V3_BASE;
  const metrics = new Map<string, string>();
  for (const part of parts) {
    const [key, value, extra] = part.split(':');
    if (!key || value === undefined || extra !== undefined || metrics.has(key)) return undefined;
    metrics.set(key, value);
  }
  for (const [key, allowed] of Object.entries(required)) {
    const value = metrics.get(key);
    if (value?.length !== 1 || !allowed.includes(value)) return undefined;
  }
  const scores = cvss.fromVector(vector.trim())?.calculateScores() as
    { base?: number; baseMetricsOnly?: number } | undefined;
  const score = version === 4 ? scores?.baseMetricsOnly : scores?.base;
  return typeof score === 'number' && Number.isFinite(score) ? { score, version } : undefined;
}

/** Maps the words databases use for their own ratings; undefined for "not yet assigned" etc. */
export function ratingFromWord(word: string): Severity | undefined {
  switch (word.replace(/\*+$/, '').trim().toLowerCase()) {
    case 'critical':
      return 'CRITICAL';
    case 'high':
    case 'important':
      return 'HIGH';
    case 'medium':
    case 'moderate':
      return 'MEDIUM';
    case 'low':
    case 'negligible':
    case 'unimportant':
    case 'minor':
      return 'LOW';
    default:
      return undefined;
  }
}

function fromSeverityArray(entries: readonly OsvSeverity[] | undefined): SeverityAssessment | undefined {
  if (!entries || entries.length === 0) return undefined;
  let best: { score: number; version: 3 | 4 } | undefined;
  for (const entry of entries) {
    if (entry.type !== 'CVSS_V3' && entry.type !== 'CVSS_V4') continue;
    const parsed = cvssBaseScore(entry.score);
    if (!parsed) continue;
    if (
      !best ||
      parsed.version < best.version ||
      (parsed.version === best.version && parsed.score > best.score)
    ) {
      best = parsed;
    }
  }
  if (best) {
    return { severity: ratingForScore(best.score), score: best.score, source: `CVSS_V${best.version}` };
  }
  for (const entry of entries) {
    const rating = ratingFromWord(entry.score);
    if (rating) return { severity: rating, source: entry.type };
  }
  return undefined;
}

function fromWordField(
  obj: Record<string, unknown> | undefined,
  source: string,
): SeverityAssessment | undefined {
  for (const key of ['severity', 'urgency']) {
    const value = obj?.[key];
    const rating = typeof value === 'string' ? ratingFromWord(value) : undefined;
    if (rating) return { severity: rating, source };
  }
  return undefined;
}

/** Ubuntu's `cves_map`: the worst of the per-CVE assessments. */
function fromUbuntuCvesMap(affected: OsvAffected | undefined): SeverityAssessment | undefined {
  const cves = (affected?.database_specific?.cves_map as { cves?: unknown } | undefined)?.cves;
  if (!Array.isArray(cves)) return undefined;
  let worst: SeverityAssessment | undefined;
  for (const cve of cves as { severity?: unknown }[]) {
    if (!Array.isArray(cve?.severity)) continue;
    const found = fromSeverityArray(
      (cve.severity as unknown[]).filter(
        (s): s is OsvSeverity =>
          typeof (s as OsvSeverity)?.type === 'string' && typeof (s as OsvSeverity)?.score === 'string',
      ),
    );
    if (found && (!worst || compareAssessments(found, worst) > 0)) worst = found;
  }
  return worst;
}

/** Orders assessments: by rating, then by score (a scored one beats an unscored equal rating). */
export function compareAssessments(a: SeverityAssessment, b: SeverityAssessment): number {
  const byRank = SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity];
  if (byRank !== 0) return byRank;
  return (a.score ?? -1) - (b.score ?? -1);
}

/** Severity of `record` for the affected entry that matched (pass it when known). */
export function severityOf(record: OsvRecord, affectedEntry?: OsvAffected): SeverityAssessment {
  return (
    fromSeverityArray(affectedEntry?.severity?.length ? affectedEntry.severity : record.severity) ??
    fromWordField(affectedEntry?.database_specific, 'database_specific') ??
    fromWordField(affectedEntry?.ecosystem_specific, 'ecosystem_specific') ??
    fromWordField(record.database_specific, 'database_specific') ??
    fromUbuntuCvesMap(affectedEntry) ?? { severity: 'UNKNOWN' }
  );
}
