/**
 * Version comparison per ecosystem. Pure functions, no I/O.
 *
 * Ecosystem names are OSV's (`Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.20`, `npm`, `PyPI`,
 * `Go`, `crates.io`, `Maven`, `RubyGems`, `NuGet`, `Packagist`, `Red Hat`, …); a release suffix
 * after the first `:` is ignored for comparison.
 */
import { ContainmentError, ErrorCodes } from '../errors.js';
import { alpineComparator, apkEcosystems } from './alpine.js';
import { debianComparator, dpkgEcosystems } from './debian.js';
import { goComparator } from './go.js';
import { mavenComparator } from './maven.js';
import { npmComparator } from './npm.js';
import { nugetComparator } from './nuget.js';
import { packagistComparator } from './packagist.js';
import { pypiComparator } from './pypi.js';
import { rpmComparator, rpmEcosystems } from './rpm.js';
import { rubygemsComparator } from './rubygems.js';
import { cratesComparator } from './semver.js';
import type { VersionComparator } from './types.js';

export type { VersionComparator } from './types.js';
/** SemVer 2 ordering used by OSV ranges of type `SEMVER`, whatever the ecosystem. */
export { compareSemver } from './semver.js';
/** Which OSV ecosystems each OS package format serves (the extractors use these lists). */
export { apkEcosystems, dpkgEcosystems, rpmEcosystems };

/** Registered under its own name plus every alias (names are case-sensitive, as OSV spells them). */
const registry = new Map<string, VersionComparator>();
function register(comparator: VersionComparator, names: readonly string[] = [comparator.ecosystem]): void {
  for (const name of names) registry.set(name, comparator);
}
register(debianComparator, dpkgEcosystems);
register(alpineComparator, apkEcosystems);
register(rpmComparator, rpmEcosystems);
register(pypiComparator);
register(npmComparator);
register(goComparator);
register(cratesComparator);
register(mavenComparator);
register(rubygemsComparator);
register(nugetComparator);
register(packagistComparator);

/** `Debian:12` → `Debian`; `Ubuntu:Pro:22.04:LTS` → `Ubuntu`; `npm` → `npm`. */
export function baseEcosystem(ecosystem: string): string {
  const i = ecosystem.indexOf(':');
  return i === -1 ? ecosystem : ecosystem.slice(0, i);
}

export function getComparator(ecosystem: string): VersionComparator | undefined {
  return registry.get(ecosystem) ?? registry.get(baseEcosystem(ecosystem));
}

export function supportedEcosystems(): string[] {
  return [...registry.keys()].sort();
}

/** Compare two versions of one ecosystem: -1, 0 or 1. Throws ECOSYSTEM_UNSUPPORTED for unknown ecosystems. */
export function compareVersions(ecosystem: string, a: string, b: string): -1 | 0 | 1 {
  const comparator = getComparator(ecosystem);
  if (!comparator) {
    throw new ContainmentError(
      ErrorCodes.ECOSYSTEM_UNSUPPORTED,
      `no version comparator for ecosystem "${ecosystem}"`,
    );
  }
  return comparator.compare(a, b);
}
