/**
 * The bookkeeping of one import, independent of the storage engine (pure): validating items
 * with the OSV schema and counting what each record did, as `ImportReport` defines it.
 */
import type { ImportItem, ImportReport, InvalidRecord } from './advisory-store.js';
import { OsvRecordSchema } from './osv.js';
import { impossibleRange } from './osv-ranges.js';
import type { OsvRecord } from './osv.js';

/** What storing one valid record did to the stored state. */
export type WriteOutcome = 'added' | 'changed' | 'withdrawn' | 'unchanged';
type Category = Exclude<WriteOutcome, 'unchanged'>;

export class ImportTally {
  private readonly changes = new Map<string, Category>();
  private readonly seen = new Set<string>();
  private readonly invalidRecords: InvalidRecord[] = [];
  private unchanged = 0;
  private duplicate = 0;

  /** The item's record when it is a valid OSV record; otherwise notes it as invalid. */
  validate(item: ImportItem): OsvRecord | undefined {
    const parsed = item.error === undefined ? OsvRecordSchema.safeParse(item.record) : undefined;
    if (parsed?.success === true) {
      const impossible = impossibleRange(parsed.data);
      if (impossible === undefined) return parsed.data;
      this.invalid(item.origin, `${parsed.data.id}: ${impossible}`);
      return undefined;
    }
    this.invalid(item.origin, item.error ?? describeIssue(item.record, parsed?.error.issues[0]));
    return undefined;
  }

  invalid(origin: string, reason: string): void {
    this.invalidRecords.push({ origin, reason: oneLine(reason) });
  }

  record(id: string, outcome: WriteOutcome): void {
    if (outcome === 'unchanged') {
      if (this.seen.has(id)) this.duplicate++;
      else this.unchanged++;
    } else {
      // Added and then changed again within one import is, to the caller, just added.
      const previous = this.changes.get(id);
      this.changes.set(id, previous === 'added' && outcome === 'changed' ? 'added' : outcome);
    }
    this.seen.add(id);
  }

  report(importId: number): ImportReport {
    const ids = (c: Category) => [...this.changes].filter(([, v]) => v === c).map(([id]) => id);
    const [addedIds, changedIds, withdrawnIds] = [ids('added'), ids('changed'), ids('withdrawn')];
    return {
      importId,
      added: addedIds.length,
      changed: changedIds.length,
      withdrawn: withdrawnIds.length,
      unchanged: this.unchanged,
      duplicate: this.duplicate,
      invalid: this.invalidRecords.length,
      addedIds,
      changedIds,
      withdrawnIds,
      invalidRecords: this.invalidRecords,
    };
  }
}

function describeIssue(record: unknown, issue: { path: PropertyKey[]; message: string } | undefined): string {
  const id =
    typeof record === 'object' && record !== null && typeof (record as { id?: unknown }).id === 'string'
      ? `${(record as { id: string }).id}: `
      : '';
  if (issue === undefined) return `${id}not a valid OSV record`;
  const where = issue.path.length > 0 ? issue.path.map(String).join('.') : 'record';
  return `${id}${where}: ${issue.message}`;
}

export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
