/**
 * How an OSV `affected[].package` is keyed for lookup (pure). Ecosystem names are case-sensitive
 * and may carry a suffix after the first ':' (`Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.19`).
 * Package names are compared exactly, except PyPI, whose names are normalised per PEP 503.
 */

/** `Debian:12` → `Debian`; `npm` → `npm`. */
export function baseEcosystem(ecosystem: string): string {
  const colon = ecosystem.indexOf(':');
  return colon === -1 ? ecosystem : ecosystem.slice(0, colon);
}

/** The name as stored in the index and used in queries for the given ecosystem. */
export function normalizePackageName(ecosystem: string, name: string): string {
  if (baseEcosystem(ecosystem) === 'PyPI') return name.toLowerCase().replace(/[-_.]+/g, '-');
  return name;
}

/**
 * Record ecosystems a query for `ecosystem` accepts: the exact ecosystem, plus its suffix-less
 * base (a record for plain `Debian` applies to every Debian release; one for `Debian:10` does
 * not apply to `Debian:9`).
 */
export function candidateEcosystems(ecosystem: string): [string, string] {
  return [ecosystem, baseEcosystem(ecosystem)];
}
