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
  /** The id is stored already, or was written earlier in this import: its index rows go. */
  replaces?: boolean;
}

export interface ImportTarget {
  /** Stored hashes of these ids (an id not stored is absent). Not called while `empty`. */
  storedHashes(ids: readonly string[]): MaybePromise<Map<string, Buffer>>;
  /** Stores the batch's new or changed records (each id once), replacing their index rows. */
  write(writes: readonly EncodedRecord[]): MaybePromise<void>;
  /** The store held no records when the import began: nothing to look up. */
  empty: boolean;
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
  // Hash of every id this import has looked at, as it stands now (absent from the store:
  // undefined); as base64 text, which costs a fraction of 400k Buffer objects.
  const hashes = new Map<string, string | undefined>();
  let batch: EncodedRecord[] = [];
  let batchBytes = 0;
  let processed = 0;
  const progress = () => options.onProgress?.(++processed);

  const flush = async () => {
    const pending = batch;
    batch = [];
    batchBytes = 0;
    const unknown = [...new Set(pending.map((e) => e.record.id))].filter((id) => !hashes.has(id));
    for (const id of unknown) hashes.set(id, undefined);
    if (unknown.length > 0 && !target.empty) {
      for (const [id, hash] of await target.storedHashes(unknown)) hashes.set(id, hash.toString('base64'));
    }
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
        // The id's last version in the batch is written; it replaces what an earlier batch wrote.
        writes.set(id, { ...encoded, replaces: previous !== undefined || writes.get(id)?.replaces === true });
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
