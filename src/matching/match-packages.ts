/**
 * Inventory × OSV records → findings, one per package and vulnerability. Pure: no I/O.
 *
 * Grouping: records that affect the same package and are connected through `aliases` (an id of
 * one listed among another's aliases, or an alias they share: CVE ↔ DSA/DLA/USN/GHSA/PYSEC) are
 * one vulnerability (union-find over ids, transitively). `upstream` does NOT group: a DLA or USN
 * lists every CVE it fixes there, so grouping on it would merge distinct vulnerabilities into one
 * finding (osv-scanner groups on aliases only, too). Upstream ids are shown in `upstream`.
 *
 * Finding id: the group's CVE when it has exactly one CVE id (among record ids and aliases);
 * otherwise the lexicographically smallest record id (a DSA fixing eight CVEs stays the DSA).
 * Every other id of the group is listed, sorted, in `aliases`.
 */
import { isContainmentError } from '../errors.js';
import type { Package } from '../inventory/types.js';
import { baseEcosystem, compareSemver, getComparator } from '../versions/index.js';
import type { OsvRecord } from '../vulndb/osv.js';
import { affects } from './affects.js';
import type { AffectsResult } from './affects.js';
import { matchIdentity, normalizePackageName } from './package-identity.js';
import { compareAssessments, SEVERITY_RANK, severityOf } from './severity.js';
import type { SeverityAssessment } from './severity.js';
import type { VulnerabilityFinding } from './types.js';

/** Candidate records: all of them, or a lookup (e.g. the vulndb index by ecosystem and name). */
export type CandidateSource = readonly OsvRecord[] | ((pkg: Package) => readonly OsvRecord[]);

export interface MatchOptions {
  /**
   * Told (once per distinct message) about records that could not be evaluated for a package,
   * e.g. an ecosystem without a version comparator. The scan goes on without them.
   */
  onWarning?: (message: string) => void;
}

interface Hit {
  record: OsvRecord;
  result: AffectsResult;
  assessment: SeverityAssessment;
}

const indexKey = (ecosystem: string, name: string): string =>
  `${baseEcosystem(ecosystem)}\u0000${normalizePackageName(ecosystem, name)}`;

function lookupFromRecords(records: readonly OsvRecord[]): (pkg: Package) => readonly OsvRecord[] {
  const index = new Map<string, OsvRecord[]>();
  for (const record of records) {
    const keys = new Set(
      (record.affected ?? []).flatMap((a) =>
        a.package ? [indexKey(a.package.ecosystem, a.package.name)] : [],
      ),
    );
    for (const key of keys) {
      const list = index.get(key);
      if (list) list.push(record);
      else index.set(key, [record]);
    }
  }
  return (pkg) => {
    const id = matchIdentity(pkg);
    return index.get(indexKey(id.ecosystem, id.name)) ?? [];
  };
}

/** All findings for an inventory, aliases grouped; packages in input order, worst first. */
export function matchPackages(
  packages: readonly Package[],
  candidates: CandidateSource,
  options: MatchOptions = {},
): VulnerabilityFinding[] {
  const lookup = typeof candidates === 'function' ? candidates : lookupFromRecords(candidates);
  const warned = new Set<string>();
  const findings: VulnerabilityFinding[] = [];
  for (const pkg of packages) {
    const hits = new Map<string, Hit>();
    for (const record of lookup(pkg)) {
      if (hits.has(record.id)) continue;
      let result: AffectsResult;
      try {
        result = affects(record, pkg);
      } catch (e) {
        if (!isContainmentError(e)) throw e;
        if (!warned.has(e.message)) {
          warned.add(e.message);
          options.onWarning?.(e.message);
        }
        continue;
      }
      if (result.affected)
        hits.set(record.id, { record, result, assessment: severityOf(record, result.affectedEntry) });
    }
    const forPackage = groupByAliases([...hits.values()]).map((group) => toFinding(pkg, group));
    forPackage.sort(
      (a, b) =>
        SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    findings.push(...forPackage);
  }
  return findings;
}

/** Connected components of records over shared ids; each group sorted by record id. */
function groupByAliases(hits: Hit[]): Hit[][] {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let root = x;
    while (parent.has(root) && parent.get(root) !== root) root = parent.get(root) as string;
    parent.set(x, root);
    return root;
  };
  const union = (a: string, b: string): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(ra < rb ? rb : ra, ra < rb ? ra : rb);
  };
  for (const { record } of hits) {
    find(record.id);
    for (const alias of record.aliases ?? []) union(record.id, alias);
  }
  const groups = new Map<string, Hit[]>();
  for (const hit of hits) {
    const root = find(hit.record.id);
    const group = groups.get(root);
    if (group) group.push(hit);
    else groups.set(root, [hit]);
  }
  return [...groups.values()].map((g) => g.sort((a, b) => (a.record.id < b.record.id ? -1 : 1)));
}

function toFinding(pkg: Package, group: Hit[]): VulnerabilityFinding {
  const ids = new Set<string>();
  for (const { record } of group) {
    ids.add(record.id);
    for (const alias of record.aliases ?? []) ids.add(alias);
  }
  const cves = [...ids].filter((id) => id.startsWith('CVE-'));
  const first = group[0] as Hit;
  const id = cves.length === 1 ? (cves[0] as string) : first.record.id;
  const upstream = [...new Set(group.flatMap((h) => h.record.upstream ?? []))]
    .filter((u) => !ids.has(u))
    .sort();

  let worst = first.assessment;
  for (const hit of group) if (compareAssessments(hit.assessment, worst) > 0) worst = hit.assessment;

  const summaryFrom = [group.find((h) => h.record.id === id), ...group];
  const summary =
    summaryFrom.find((h) => h?.record.summary)?.record.summary ??
    summaryFrom
      .find((h) => h?.record.details?.trim())
      ?.record.details?.trim()
      .split('\n')[0];

  const references = [...new Set(group.flatMap((h) => (h.record.references ?? []).map((r) => r.url)))];

  const finding: VulnerabilityFinding = {
    id,
    aliases: [...ids].filter((x) => x !== id).sort(),
    package: packageView(pkg),
    severity: worst.severity,
  };
  if (upstream.length > 0) finding.upstream = upstream;
  if (summary) finding.summary = summary;
  const fixedVersion = groupFix(pkg, group);
  if (fixedVersion !== undefined) finding.fixedVersion = fixedVersion;
  if (worst.score !== undefined) finding.score = worst.score;
  if (worst.source !== undefined) finding.severitySource = worst.source;
  if (references.length > 0) finding.references = references;
  return finding;
}

/** Upgrading must clear every record of the group: only when all name a fix, the highest. */
function groupFix(pkg: Package, group: Hit[]): string | undefined {
  const compare = getComparator(pkg.ecosystem)?.compare ?? compareSemver;
  let highest: string | undefined;
  for (const { result } of group) {
    if (result.fixedVersion === undefined) return undefined;
    if (highest === undefined || compare(result.fixedVersion, highest) > 0) highest = result.fixedVersion;
  }
  return highest;
}

function packageView(pkg: Package): VulnerabilityFinding['package'] {
  const view: VulnerabilityFinding['package'] = {
    name: pkg.name,
    version: pkg.version,
    ecosystem: pkg.ecosystem,
    location: pkg.location,
  };
  if (pkg.source) view.source = { ...pkg.source };
  if (pkg.purl) view.purl = pkg.purl;
  return view;
}
