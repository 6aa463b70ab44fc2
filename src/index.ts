/** The library API of the `containment` package. */
export { compareVersions, getComparator, supportedEcosystems } from './versions/index.js';
export { scan, evaluateInventory } from './scan/scan.js';
export type { ScanOptions, ScanPhase } from './scan/scan.js';
export type { ScanResult, ScanTarget, IgnoredFinding } from './scan/scan-result.js';
export type { Package, InsecureConfiguration, Inventory, OsInfo, Severity } from './inventory/types.js';
export type { VulnerabilityFinding, ScanSummary, ComplianceThresholds } from './matching/types.js';
export { DEFAULT_THRESHOLDS } from './matching/types.js';
export { collectInventory } from './inventory/collect.js';
export { openTarget } from './scan/targets.js';
export { openSqliteAdvisoryStore } from './vulndb/sqlite-store.js';
export type { AdvisoryStore, ImportReport } from './vulndb/advisory-store.js';
export { importFromPath } from './vulndb/record-sources.js';
export { renderReport } from './report/index.js';
export { ContainmentError, ErrorCodes } from './errors.js';
export type { ErrorCode } from './errors.js';
