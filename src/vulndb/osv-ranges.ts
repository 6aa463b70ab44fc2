/**
 * Ranges that cannot be right, found at import (pure): a record whose range could never be
 * evaluated as written is refused with a reason instead of silently matching nothing, or
 * everything. Checked per `ECOSYSTEM` range of an ecosystem with a comparator, and per `SEMVER`
 * range (GIT ranges name commits, which cannot be ordered here):
 *
 * - every `introduced` (other than `"0"`), `fixed`, `last_affected` and `limit` (other than
 *   `"*"`) is a valid version of the range's ordering;
 * - no `fixed` or `last_affected` lies below the range's smallest `introduced` (it could never
 *   apply; usually swapped fields);
 * - a range with any event has an `introduced` (OSV requires one).
 */
import { getComparator } from '../versions/index.js';
import { compareSemver, isValidSemver } from '../versions/semver.js';
import type { OsvRecord } from './osv.js';

interface Ordering {
  compare(a: string, b: string): number;
  isValid(v: string): boolean;
}

const SEMVER: Ordering = { compare: compareSemver, isValid: isValidSemver };

/** Why a record's ranges are impossible, or undefined when they are fine (or cannot be checked). */
export function impossibleRange(record: OsvRecord): string | undefined {
  for (const [i, affected] of (record.affected ?? []).entries()) {
    const ecosystem = affected.package?.ecosystem;
    for (const [j, range] of (affected.ranges ?? []).entries()) {
      const ordering =
        range.type === 'SEMVER'
          ? SEMVER
          : range.type === 'ECOSYSTEM' && ecosystem
            ? getComparator(ecosystem)
            : undefined;
      if (!ordering || range.events.length === 0) continue;
      const where = `affected[${i}].ranges[${j}] (${range.type}${ecosystem ? `, ${ecosystem}` : ''})`;
      const problem = rangeProblem(range.events, ordering);
      if (problem) return `${where}: ${problem}`;
    }
  }
  return undefined;
}

function rangeProblem(
  events: ReadonlyArray<{ introduced?: string; fixed?: string; last_affected?: string; limit?: string }>,
  ordering: Ordering,
): string | undefined {
  const introduced: string[] = [];
  const ends: Array<[string, string]> = [];
  for (const event of events) {
    for (const [kind, version] of Object.entries(event) as Array<[string, unknown]>) {
      if (!['introduced', 'fixed', 'last_affected', 'limit'].includes(kind) || typeof version !== 'string')
        continue;
      if ((kind === 'introduced' && version === '0') || (kind === 'limit' && version === '*')) {
        if (kind === 'introduced') introduced.push(version);
        continue;
      }
      if (!safeValid(ordering, version)) return `${kind} ${JSON.stringify(version)} is not a valid version`;
      if (kind === 'introduced') introduced.push(version);
      else if (kind !== 'limit') ends.push([kind, version]);
    }
  }
  if (introduced.length === 0) return 'no introduced event';
  if (introduced.includes('0')) return undefined;
  const lowest = introduced.reduce((a, b) => (ordering.compare(a, b) <= 0 ? a : b));
  for (const [kind, version] of ends) {
    if (ordering.compare(version, lowest) < 0) {
      return `${kind} ${JSON.stringify(version)} is before introduced ${JSON.stringify(lowest)}`;
    }
  }
  return undefined;
}

function safeValid(ordering: Ordering, version: string): boolean {
  try {
    return version !== '' && ordering.isValid(version);
  } catch {
    return false;
  }
}
