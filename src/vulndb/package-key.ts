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
 * RHEL stream family of an ecosystem: `Red Hat:enterprise_linux:9::baseos` →
 * `{ release: 'Red Hat:enterprise_linux:9', streamPrefix: 'Red Hat:enterprise_linux:9::' }`.
 * OSV scopes Red Hat records per repository stream (`::baseos`, `::appstream`, `::crb` …), which
 * an rpm database does not record, so every stream of the same product and major release applies.
 * Only `enterprise_linux` with a bare major qualifies: `rhel_eus:9.4::baseos` and
 * `rhel_aus:…` are separate products with their own version lines, as is `enterprise_linux:8`.
 */
export function rhelStreamFamily(ecosystem: string): { release: string; streamPrefix: string } | undefined {
  const m = /^(Red Hat:enterprise_linux:\d+)(?:::.+)?$/.exec(ecosystem);
  return m?.[1] === undefined ? undefined : { release: m[1], streamPrefix: `${m[1]}::` };
}

/**
 * Record ecosystems a query for `ecosystem` accepts, for an indexed lookup: `exact` and `base`
 * (a record for plain `Debian` applies to every Debian release; one for `Debian:10` does not
 * apply to `Debian:9`), plus, for RHEL, the stream-unscoped `release` and every ecosystem in
 * [`rangeFrom`, `rangeTo`) — the stream prefix; stored ecosystems compare bytewise (SQLite
 * BINARY, PostgreSQL `COLLATE "C"`), so the range needs no LIKE escaping and stays indexed.
 * Elsewhere `release` repeats `exact` and the range is empty (`''`, `''`).
 */
export interface EcosystemCandidates {
  exact: string;
  base: string;
  release: string;
  rangeFrom: string;
  rangeTo: string;
}

export function candidateEcosystems(ecosystem: string): EcosystemCandidates {
  const base = baseEcosystem(ecosystem);
  const rhel = rhelStreamFamily(ecosystem);
  if (rhel === undefined) return { exact: ecosystem, base, release: ecosystem, rangeFrom: '', rangeTo: '' };
  // The prefix ends in ':' (0x3A); ';' (0x3B) is the first string past every one starting with it.
  const rangeTo = `${rhel.streamPrefix.slice(0, -1)};`;
  return { exact: ecosystem, base, release: rhel.release, rangeFrom: rhel.streamPrefix, rangeTo };
}

/**
 * Whether a record scoped to `recordEcosystem` applies to a package of `packageEcosystem` by the
 * RHEL stream rule: both in the same product and major release, any stream (or none).
 */
export function sameRhelRelease(recordEcosystem: string, packageEcosystem: string): boolean {
  const record = rhelStreamFamily(recordEcosystem);
  return record !== undefined && record.release === rhelStreamFamily(packageEcosystem)?.release;
}
