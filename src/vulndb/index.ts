export type {
  AdvisoryCounts,
  AdvisoryStore,
  ImportItem,
  ImportOptions,
  ImportReport,
  ImportSummary,
  InvalidRecord,
  PackageQuery,
} from './advisory-store.js';
export { openSqliteAdvisoryStore, SCHEMA_VERSION } from './sqlite-store.js';
export type { OpenStoreOptions } from './sqlite-store.js';
export { importFromPath, openRecordSource, MAX_RECORD_BYTES } from './record-sources.js';
export type { ImportProgress, RecordSource } from './record-sources.js';
export {
  downloadAndImport,
  ecosystemArchiveUrl,
  DEFAULT_ECOSYSTEMS,
  DEFAULT_OSV_BASE_URL,
} from './download.js';
export type { DownloadedArchive, UpdateOptions, UpdateProgress, UpdateReport } from './download.js';
export { baseEcosystem, candidateEcosystems, normalizePackageName } from './package-key.js';
