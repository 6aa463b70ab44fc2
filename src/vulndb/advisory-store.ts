/**
 * The seam between advisory ingestion/matching and the storage engine. `AsyncAdvisoryStore` is
 * what callers that work with any engine take: its reads may answer with a promise (PostgreSQL,
 * `postgres-store.ts`) or a plain value (SQLite, `sqlite-store.ts`), so they `await` every read.
 * `AdvisoryStore` is the synchronous special case SQLite implements.
 */
import type { OsvRecord } from './osv.js';

/** One input to an import: a parsed JSON value (validated by the store) and where it came from. */
export interface ImportItem {
  record: unknown;
  /** File path, or `<zip>!<entry>`, or `<file>[<index>]`; shown with invalid records. */
  origin: string;
  /** Set when the source could not even produce a JSON value (unparseable, unreadable). */
  error?: string;
}

export interface InvalidRecord {
  origin: string;
  /** One line. */
  reason: string;
}

export interface ImportOptions {
  /** Called after each item with the number of items processed so far. */
  onProgress?: (processed: number) => void;
  /** Recorded with the import (e.g. the path or URLs). */
  source?: string;
}

/**
 * Counts are per input item. A record is `added` when its id is new, `changed` when its stored
 * content differs (a new `modified` changes the content), `withdrawn` when it is new or changed and
 * carries `withdrawn`, `unchanged` when identical to what is stored, `duplicate` when its id already
 * appeared earlier in the same import with identical content (osv.dev data repeats records across
 * folders). The id lists name every record whose effective state changed, for re-matching.
 */
export interface ImportReport {
  importId: number;
  added: number;
  changed: number;
  withdrawn: number;
  unchanged: number;
  duplicate: number;
  invalid: number;
  addedIds: string[];
  changedIds: string[];
  withdrawnIds: string[];
  invalidRecords: InvalidRecord[];
}

export interface PackageQuery {
  ecosystem: string;
  name: string;
}

export interface AdvisoryCounts {
  /** Every stored record, withdrawn ones included. */
  records: number;
  withdrawn: number;
}

export interface ImportSummary {
  importId: number;
  source: string | undefined;
  startedAt: string;
  finishedAt: string;
}

export type MaybePromise<T> = T | Promise<T>;

export interface AsyncAdvisoryStore {
  /** Validates and stores records; the whole import is atomic (one transaction). */
  importRecords(
    items: AsyncIterable<ImportItem> | Iterable<ImportItem>,
    options?: ImportOptions,
  ): Promise<ImportReport>;
  /**
   * Candidate (non-withdrawn) records naming the package: affected entries whose ecosystem is
   * `ecosystem` itself or its suffix-less base (for RHEL, any stream of the same product and
   * major release; see `candidateEcosystems`), and whose name matches (PEP 503 for PyPI).
   */
  lookup(ecosystem: string, name: string): MaybePromise<OsvRecord[]>;
  /** `lookup` for many packages in one go (one round trip); result[i] answers queries[i]. */
  lookupMany(queries: readonly PackageQuery[]): MaybePromise<OsvRecord[][]>;
  /** A stored record by id, withdrawn or not. */
  get(id: string): MaybePromise<OsvRecord | undefined>;
  count(): MaybePromise<AdvisoryCounts>;
  /** Ids of records added, changed or withdrawn by imports after `importId` (0 = all). */
  changedSince(importId: number): MaybePromise<string[]>;
  lastImport(): MaybePromise<ImportSummary | undefined>;
  /**
   * The match cache every process on this database shares (`scanner/package-matcher.ts`): the
   * stored entries of `generation` (an import id) among `keys`, in one statement. Absent on a
   * store that cannot share (a read-only file).
   */
  sharedMatches?(generation: number, keys: readonly string[]): MaybePromise<Map<string, string>>;
  /**
   * Stores entries under `generation` in one statement; a key already stored is left as it is
   * (every writer of a key computed the same entry). Each import deletes the older generations.
   */
  storeMatches?(generation: number, entries: readonly SharedMatch[]): MaybePromise<void>;
  close(): MaybePromise<void>;
}

/** One shared match cache entry: a package's match key and its encoded finding set. */
export interface SharedMatch {
  key: string;
  value: string;
}

/** A store whose reads answer synchronously (SQLite). */
export interface AdvisoryStore extends AsyncAdvisoryStore {
  lookup(ecosystem: string, name: string): OsvRecord[];
  lookupMany(queries: readonly PackageQuery[]): OsvRecord[][];
  get(id: string): OsvRecord | undefined;
  count(): AdvisoryCounts;
  changedSince(importId: number): string[];
  lastImport(): ImportSummary | undefined;
  sharedMatches?(generation: number, keys: readonly string[]): Map<string, string>;
  storeMatches?(generation: number, entries: readonly SharedMatch[]): void;
  close(): void;
}
