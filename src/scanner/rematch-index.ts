/**
 * The keys of the re-match index (pure). A stored inventory is indexed under the packages it is
 * matched on, and each advisory id a stored finding cites under the package it was found on; a
 * changed advisory yields the keys of the packages it names and of its own id. The workloads to
 * re-match after a feed change are those sharing a key with a changed advisory, so most of them
 * are never read.
 */
import type { Package } from '../inventory/types.js';
import { matchIdentity, normalizePackageName } from '../matching/index.js';
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

// Pure function of a few fields, computed for every package of every re-matched workload.
const packageKeys = new Map<string, string>();

/** The key a package is matched under (distribution packages: their source package). */
export function inventoryPackageKey(pkg: Package): string {
  const { ecosystem, name } = matchIdentity(pkg);
  const memo = `${ecosystem}\u0000${name}`;
  let key = packageKeys.get(memo);
  if (key === undefined) {
    key = packageKey(ecosystem, name);
    if (packageKeys.size >= 100_000) packageKeys.clear();
    packageKeys.set(memo, key);
  }
  return key;
}

/** Keys of the packages a changed (added, modified or withdrawn) record names. */
export function advisoryPackageKeys(record: OsvRecord | undefined): string[] {
  const keys = new Set<string>();
  for (const affected of record?.affected ?? []) {
    if (affected.package) keys.add(packageKey(affected.package.ecosystem, affected.package.name));
  }
  return [...keys];
}
