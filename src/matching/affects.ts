/**
 * Whether one OSV record affects one package version, following the schema's evaluation
 * algorithm (https://ossf.github.io/osv-schema/#evaluation). Pure: no I/O.
 *
 * - `ECOSYSTEM` ranges use the ecosystem's comparator; `SEMVER` ranges use generic SemVer 2
 *   whatever the ecosystem; `GIT` ranges need a commit graph and are ignored.
 * - Events may come in any order: they are sorted (introduced `"0"` first, ties put `introduced`
 *   before the others so a fix at the same version wins). A version is affected when, walking the
 *   sorted events, the last one that applies is an `introduced` (`fixed` exclusive,
 *   `last_affected` inclusive), and it is below one of the range's `limit`s if it has any.
 * - An exact string in `versions` is affected even without ranges.
 * - Withdrawn records affect nothing.
 *
 * Sorted events are cached per record object (WeakMap), so a record shared by many packages
 * of a scan is prepared once.
 */
import { ContainmentError, ErrorCodes } from '../errors.js';
import { compareSemver, getComparator } from '../versions/index.js';
import type { OsvAffected, OsvRecord } from '../vulndb/osv.js';
import { ecosystemApplies, matchIdentity, normalizePackageName } from './package-identity.js';
import type { PackageRef } from './package-identity.js';

type Compare = (a: string, b: string) => -1 | 0 | 1;

export interface AffectsResult {
  affected: boolean;
  /**
   * The version that fixes it on this package's line: for each range that affects the version,
   * the first `fixed` event above it; the highest of those when several ranges/entries apply.
   * Absent when any affecting range has no fix (open-ended or `last_affected`) or only the
   * `versions` list matched.
   */
  fixedVersion?: string;
  /** The first `affected[]` entry that matched (its `severity` overrides the record's). */
  affectedEntry?: OsvAffected;
}

interface SortedEvent {
  kind: 'introduced' | 'fixed' | 'last_affected';
  version: string;
}

interface PreparedRange {
  type: 'ECOSYSTEM' | 'SEMVER';
  raw: readonly { introduced?: string; fixed?: string; last_affected?: string; limit?: string }[];
  sorted?: SortedEvent[];
  limits?: string[];
}

interface PreparedEntry {
  affected: OsvAffected;
  ecosystem: string;
  nameKey: string;
  versions: ReadonlySet<string>;
  ranges: PreparedRange[];
}

const prepared = new WeakMap<OsvRecord, PreparedEntry[]>();

function prepare(record: OsvRecord): PreparedEntry[] {
  let entries = prepared.get(record);
  if (entries) return entries;
  entries = [];
  for (const affected of record.affected ?? []) {
    if (!affected.package) continue;
    const { ecosystem, name } = affected.package;
    entries.push({
      affected,
      ecosystem,
      nameKey: normalizePackageName(ecosystem, name),
      versions: new Set(affected.versions ?? []),
      ranges: (affected.ranges ?? []).flatMap((r) =>
        r.type === 'GIT' ? [] : [{ type: r.type, raw: r.events }],
      ),
    });
  }
  prepared.set(record, entries);
  return entries;
}

const KIND_ORDER = { introduced: 0, fixed: 1, last_affected: 2 } as const;

function sortRange(range: PreparedRange, compare: Compare): SortedEvent[] {
  if (range.sorted) return range.sorted;
  const events: SortedEvent[] = [];
  const limits: string[] = [];
  for (const e of range.raw) {
    if (e.introduced !== undefined) events.push({ kind: 'introduced', version: e.introduced });
    else if (e.fixed !== undefined) events.push({ kind: 'fixed', version: e.fixed });
    else if (e.last_affected !== undefined) events.push({ kind: 'last_affected', version: e.last_affected });
    else if (e.limit !== undefined) limits.push(e.limit);
  }
  const isZero = (e: SortedEvent): boolean => e.kind === 'introduced' && e.version === '0';
  events.sort((a, b) => {
    const za = isZero(a);
    const zb = isZero(b);
    if (za || zb) return za === zb ? 0 : za ? -1 : 1;
    return compare(a.version, b.version) || KIND_ORDER[a.kind] - KIND_ORDER[b.kind];
  });
  range.sorted = events;
  range.limits = limits;
  return events;
}

/** `{affected, fix}` for one range; fix undefined when the affecting range names none. */
function evaluateRange(
  range: PreparedRange,
  version: string,
  compare: Compare,
): { fix?: string } | undefined {
  const events = sortRange(range, compare);
  const limits = range.limits ?? [];
  if (limits.length > 0 && !limits.some((l) => l === '*' || compare(version, l) < 0)) return undefined;
  let affected = false;
  for (const e of events) {
    const c = e.kind === 'introduced' && e.version === '0' ? 1 : compare(version, e.version);
    if (c < 0) break; // sorted: no later event applies to this version
    if (e.kind === 'introduced') affected = true;
    else if (e.kind === 'fixed') affected = false;
    else if (c > 0) affected = false; // last_affected is inclusive
  }
  if (!affected) return undefined;
  const next = events.find((e) => e.kind !== 'introduced' && compare(e.version, version) >= 0);
  return next?.kind === 'fixed' ? { fix: next.version } : {};
}

/**
 * Evaluates `record` for one package. A package carrying `source` is matched on its source
 * name and version (distribution advisories name source packages).
 * Throws ECOSYSTEM_UNSUPPORTED when an `ECOSYSTEM` range must be evaluated for an ecosystem
 * without a comparator (and the `versions` list did not already answer).
 */
export function affects(
  record: OsvRecord,
  pkg: PackageRef & { source?: { name: string; version: string } },
): AffectsResult {
  if (record.withdrawn) return { affected: false };
  const id = matchIdentity(pkg);
  const nameKey = normalizePackageName(id.ecosystem, id.name);
  let affectedEntry: OsvAffected | undefined;
  const fixes: { fix: string; compare: Compare }[] = [];
  let unfixed = false;

  for (const entry of prepare(record)) {
    if (entry.nameKey !== nameKey || !ecosystemApplies(entry.ecosystem, id.ecosystem)) continue;
    const inVersions = entry.versions.has(id.version);
    let inRanges = false;
    for (const range of entry.ranges) {
      const compare: Compare | undefined =
        range.type === 'SEMVER' ? compareSemver : getComparator(entry.ecosystem)?.compare;
      if (!compare) {
        if (inVersions) continue;
        throw new ContainmentError(
          ErrorCodes.ECOSYSTEM_UNSUPPORTED,
          `no version comparator for ecosystem "${entry.ecosystem}" (advisory ${record.id})`,
        );
      }
      const hit = evaluateRange(range, id.version, compare);
      if (!hit) continue;
      inRanges = true;
      if (hit.fix === undefined) unfixed = true;
      else fixes.push({ fix: hit.fix, compare });
    }
    if (!inRanges && !inVersions) continue;
    affectedEntry ??= entry.affected;
  }

  if (!affectedEntry) return { affected: false };
  let highest: (typeof fixes)[number] | undefined;
  for (const f of fixes) if (!highest || f.compare(f.fix, highest.fix) > 0) highest = f;
  // A fix is only reported when every affecting range names one (versions-only → unknown).
  return highest && !unfixed
    ? { affected: true, fixedVersion: highest.fix, affectedEntry }
    : { affected: true, affectedEntry };
}
