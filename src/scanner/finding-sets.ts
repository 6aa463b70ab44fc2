/**
 * The compact form of a scan's findings (pure). Findings come one run per inventory package (the
 * matcher's order); a run without its `package` fields depends only on the package's match
 * identity and the advisories, so thousands of workloads share the same few runs. Stores keep
 * each distinct run once ("finding set", addressed by the SHA-256 of its JSON) and a result as
 * the list of (package index, set) pairs; the inventory is kept once per distinct content.
 */
import { createHash } from 'node:crypto';
import type { InsecureConfiguration, Package } from '../inventory/types.js';
import type { VulnerabilityFinding } from '../matching/types.js';

/** A finding without the package it was found in (that comes from the inventory). */
export type BareFinding = Omit<VulnerabilityFinding, 'package'>;

/** One package's findings, as stored once and shared. */
export interface FindingSet {
  /** SHA-256 (base64url) of `body`. */
  digest: string;
  /** JSON of `findings`. */
  body: string;
  findings: readonly BareFinding[];
}

export function contentDigest(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

export function findingSet(findings: readonly BareFinding[]): FindingSet {
  const body = JSON.stringify(findings);
  return { digest: contentDigest(body), body, findings };
}

/** The `package` of a finding on `pkg`, exactly as the matcher writes it. */
export function packageView(pkg: Package): VulnerabilityFinding['package'] {
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

function bare(finding: VulnerabilityFinding): BareFinding {
  const { package: _package, ...rest } = finding;
  return rest;
}

const samePackage = (a: VulnerabilityFinding['package'], b: VulnerabilityFinding['package']): boolean =>
  a.name === b.name &&
  a.version === b.version &&
  a.ecosystem === b.ecosystem &&
  a.location === b.location &&
  a.purl === b.purl &&
  a.source?.name === b.source?.name &&
  a.source?.version === b.source?.version;

/**
 * Splits findings into one run per package (index-aligned with `packages`; undefined for a
 * package without findings). Undefined when the findings are not in that order or name a package
 * the inventory does not hold: such a result cannot be stored compactly.
 */
export function splitRuns(
  packages: readonly Package[],
  vulnerabilities: readonly VulnerabilityFinding[],
): (BareFinding[] | undefined)[] | undefined {
  const runs: (BareFinding[] | undefined)[] = [];
  let next = 0;
  for (const pkg of packages) {
    const view = packageView(pkg);
    let run: BareFinding[] | undefined;
    while (
      next < vulnerabilities.length &&
      samePackage((vulnerabilities[next] as VulnerabilityFinding).package, view)
    ) {
      (run ??= []).push(bare(vulnerabilities[next] as VulnerabilityFinding));
      next += 1;
    }
    runs.push(run);
  }
  return next === vulnerabilities.length ? runs : undefined;
}

/** The findings of runs aligned with `packages`, each with its package. */
export function joinRuns(
  packages: readonly Package[],
  runs: readonly (readonly BareFinding[] | undefined)[],
): VulnerabilityFinding[] {
  const out: VulnerabilityFinding[] = [];
  for (const [i, run] of runs.entries()) {
    if (!run || run.length === 0) continue;
    const view = packageView(packages[i] as Package);
    // The matcher's key order (id, aliases, package, …), so the JSON reads the same.
    for (const { id, aliases, ...rest } of run) out.push({ id, aliases, package: view, ...rest });
  }
  return out;
}

/** `vuln|<id>|<ecosystem>|<name>|<version>`: a vulnerability finding's stable key (`findingKeys`). */
export function vulnerabilityKey(id: string, pkg: Pick<Package, 'ecosystem' | 'name' | 'version'>): string {
  return `vuln|${id}|${pkg.ecosystem}|${pkg.name}|${pkg.version}`;
}

/** Stable identities of a scan's findings, so two scans can be compared without their details. */
export function findingKeys(
  vulnerabilities: readonly VulnerabilityFinding[],
  insecureConfigurations: readonly InsecureConfiguration[],
): string[] {
  const keys = new Set<string>();
  for (const v of vulnerabilities) keys.add(vulnerabilityKey(v.id, v.package));
  for (const c of insecureConfigurations) keys.add(`config|${c.id}`);
  return [...keys].sort();
}
