/** Matching: inventory × OSV advisories → findings, severity, summary. Pure: no I/O. */
export { affects } from './affects.js';
export type { AffectsResult } from './affects.js';
export { matchPackages } from './match-packages.js';
export type { CandidateSource, MatchOptions } from './match-packages.js';
export { ecosystemApplies, matchIdentity, normalizePackageName } from './package-identity.js';
export type { PackageRef } from './package-identity.js';
export { cvssBaseScore, ratingForScore, severityOf } from './severity.js';
export type { SeverityAssessment } from './severity.js';
export { RISK_WEIGHTS, summarize } from './summary.js';
export * from './types.js';
