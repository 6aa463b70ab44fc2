/**
 * The keys of the re-match index (pure). A stored scan result is indexed under the packages its
 * inventory is matched on and the advisory ids its findings cite; a changed advisory yields the
 * keys of the packages it names and of its own id. The workloads to re-match after a feed change
 * are those sharing a key with a changed advisory, so most of them are never read.
 */
import type { Package } from '../inventory/types.js';
import { matchIdentity, normalizePackageName } from '../matching/index.js';
import type { VulnerabilityFinding } from '../matching/types.js';
import { baseEcosystem } from '../versions/index.js';
import type { OsvRecord } from '../vulndb/osv.js';

/**
 * Base ecosystem, as the matcher compares names: a `Debian:11` record keys like a `Debian:12`
 * package, so the index may over-select but never misses one.
 */
export function packageKey(ecosystem: string, name: string): string {
  return `p|${baseEcosystem(ecosystem)}|${normalizePackageName(ecosystem, name)}`;
}

export function advisoryKey(id: string): string {
  return `a|${id}`;
}

/** The key a package is matched under (distribution packages: their source package). */
export function inventoryPackageKey(pkg: Package): string {
  const { ecosystem, name } = matchIdentity(pkg);
  return packageKey(ecosystem, name);
}

/**
 * Index keys of one stored result: its packages, and every id its findings cite (a changed record
 * that no longer names a package must still reach the workloads it was found in).
 */
export function resultIndexKeys(
  packages: readonly Package[],
  vulnerabilities: readonly VulnerabilityFinding[],
): string[] {
  const keys = new Set(packages.map(inventoryPackageKey));
  for (const v of vulnerabilities) {
    keys.add(advisoryKey(v.id));
    for (const alias of v.aliases) keys.add(advisoryKey(alias));
  }
  return [...keys];
}

/** Keys of the packages a changed (added, modified or withdrawn) record names. */
export function advisoryPackageKeys(record: OsvRecord | undefined): string[] {
  const keys = new Set<string>();
  for (const affected of record?.affected ?? []) {
    if (affected.package) keys.add(packageKey(affected.package.ecosystem, affected.package.name));
  }
  return [...keys];
}
