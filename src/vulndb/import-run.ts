/**
 * The engine-independent part of an import, written once for both advisory stores: validate each
 * item, encode it (compact JSON and its SHA-256), decide in batches what each record does against
 * the stored hashes, and hand the engine only the records to write. The engine supplies the
 * stored hashes of a batch's ids and the write of a batch; it runs the surrounding transaction.
 */
import { createHash } from 'node:crypto';
import type { ImportItem, ImportOptions, ImportReport, MaybePromise } from './advisory-store.js';
import { ImportTally } from './import-tally.js';
import type { WriteOutcome } from './import-tally.js';
import type { OsvRecord } from './osv.js';
import { normalizePackageName } from './package-key.js';

/** A valid record with its stored JSON and content hash. */
export interface EncodedRecord {
  record: OsvRecord;
  json: string;
  hash: Buffer;
  /** The id is stored (before this batch): the row is updated and its index rows replaced. */
  replaces?: boolean;
}

export interface ImportTarget {
  /** Stored hashes of these ids, including this import's earlier batches (absent: not stored). */
  storedHashes(ids: readonly string[]): MaybePromise<Map<string, Buffer>>;
  /** Stores the batch's new or changed records (each id once), replacing their index rows. */
  write(writes: readonly EncodedRecord[]): MaybePromise<void>;
  /** Why a valid record cannot be stored on this engine (e.g. NUL on PostgreSQL), if so. */
  unstorable?(record: OsvRecord): string | undefined;
}

/** Records per batch, and a byte budget so batches of large records stay modest. */
const BATCH_RECORDS = 1000;
const BATCH_BYTES = 8 * 1024 * 1024;

export async function runImport(
  items: AsyncIterable<ImportItem> | Iterable<ImportItem>,
  options: ImportOptions,
  importId: number,
  target: ImportTarget,
): Promise<ImportReport> {
  const tally = new ImportTally();
  let batch: EncodedRecord[] = [];
  let batchBytes = 0;
  let processed = 0;
  const progress = () => options.onProgress?.(++processed);

  const flush = async () => {
    const pending = batch;
    batch = [];
    batchBytes = 0;
    // Each id's hash as it stands now: earlier batches are already written in this transaction,
    // so the store answers for them too and nothing is kept across batches (400k ids of memory).
    const stored = await target.storedHashes([...new Set(pending.map((e) => e.record.id))]);
    const hashes = new Map<string, string | undefined>();
    for (const [id, hash] of stored) hashes.set(id, hash.toString('base64'));
    // Decide in input order, as if written one by one; only each id's last version is written.
    const writes = new Map<string, EncodedRecord>();
    for (const encoded of pending) {
      const { id } = encoded.record;
      const previous = hashes.get(id);
      const hash = encoded.hash.toString('base64');
      let outcome: WriteOutcome;
      if (previous === hash) outcome = 'unchanged';
      else {
        outcome = encoded.record.withdrawn !== undefined ? 'withdrawn' : previous ? 'changed' : 'added';
        hashes.set(id, hash);
        // The id's last version in the batch is written, replacing a stored one if there is one.
        writes.set(id, { ...encoded, replaces: stored.has(id) });
      }
      tally.record(id, outcome);
      progress();
    }
    if (writes.size > 0) await target.write([...writes.values()]);
  };

  for await (const item of items) {
    const record = tally.validate(item);
    const unstorable = record && target.unstorable?.(record);
    if (record !== undefined && unstorable !== undefined) tally.invalid(item.origin, unstorable);
    if (record === undefined || unstorable !== undefined) {
      progress();
      continue;
    }
    const json = JSON.stringify(record);
    batch.push({ record, json, hash: createHash('sha256').update(json).digest() });
    batchBytes += json.length;
    if (batch.length >= BATCH_RECORDS || batchBytes >= BATCH_BYTES) await flush();
  }
  if (batch.length > 0) await flush();
  return tally.report(importId);
}

/**
 * The index rows of a record: (normalised name, ecosystem) of each affected package, once each.
 * Withdrawn records are kept (get() shows them) but have none, so they never match.
 */
export function affectedKeys(record: OsvRecord): [name: string, ecosystem: string][] {
  if (record.withdrawn !== undefined) return [];
  const keys = new Map<string, [string, string]>();
  for (const { package: pkg } of record.affected ?? []) {
    if (pkg === undefined) continue;
    const name = normalizePackageName(pkg.ecosystem, pkg.name);
    keys.set(`${name}\0${pkg.ecosystem}`, [name, pkg.ecosystem]);
  }
  return [...keys.values()];
}
