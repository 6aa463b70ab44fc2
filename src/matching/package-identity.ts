/**
 * Which package an OSV `affected[].package` names, compared the way each ecosystem defines it.
 * Pure: no I/O.
 */
import { sameRhelRelease } from '../vulndb/package-key.js';
import { baseEcosystem } from '../versions/index.js';

/** The package to evaluate: for distributions, pass the SOURCE package (see `matchIdentity`). */
export interface PackageRef {
  ecosystem: string;
  name: string;
  version: string;
}

/**
 * Canonical form of a package name for comparison, only where the ecosystem defines one:
 * PyPI names are normalised per PEP 503 (case-folded, runs of `-_.` → `-`); NuGet ids and
 * Packagist names are case-insensitive. Everything else is compared as is (npm, Go, Maven
 * `groupId:artifactId`, RubyGems, crates.io and the distributions are case-sensitive).
 */
export function normalizePackageName(ecosystem: string, name: string): string {
  switch (baseEcosystem(ecosystem)) {
    case 'PyPI':
      return name.toLowerCase().replace(/[-_.]+/g, '-');
    case 'NuGet':
    case 'Packagist':
      return name.toLowerCase();
    default:
      return name;
  }
}

/** Release suffix of an ecosystem string: `Debian:12` → `12`, `Ubuntu:22.04:LTS` → `22.04:LTS`. */
function releaseSuffix(ecosystem: string): string {
  const i = ecosystem.indexOf(':');
  return i === -1 ? '' : ecosystem.slice(i + 1);
}

/**
 * Whether a record's ecosystem applies to a package's: same base ecosystem, and either the
 * record is not scoped to a release (`Debian`) or it names the package's release exactly
 * (`Debian:11` never matches a `Debian:12` system; `Ubuntu:Pro:22.04:LTS` is not
 * `Ubuntu:22.04:LTS`). A package without a release only matches unscoped records: guessing its
 * release would match other releases' version lines. RHEL is the one exception: records are
 * scoped per repository stream, which an rpm inventory does not know, so any stream of the
 * package's product and major release applies (`…:9::appstream` to `…:9::baseos`; see
 * `rhelStreamFamily`).
 */
export function ecosystemApplies(recordEcosystem: string, packageEcosystem: string): boolean {
  if (baseEcosystem(recordEcosystem) !== baseEcosystem(packageEcosystem)) return false;
  const scope = releaseSuffix(recordEcosystem);
  return (
    scope === '' ||
    scope === releaseSuffix(packageEcosystem) ||
    sameRhelRelease(recordEcosystem, packageEcosystem)
  );
}

/**
 * The identity advisories are matched on. Distribution advisories name SOURCE packages (dpkg
 * `Source:`, apk origin, source rpm), so a package that carries a `source` is matched with the
 * source name and version; the finding is still reported on the binary package.
 */
export function matchIdentity(pkg: PackageRef & { source?: { name: string; version: string } }): PackageRef {
  if (!pkg.source?.name) return { ecosystem: pkg.ecosystem, name: pkg.name, version: pkg.version };
  return { ecosystem: pkg.ecosystem, name: pkg.source.name, version: pkg.source.version || pkg.version };
}
