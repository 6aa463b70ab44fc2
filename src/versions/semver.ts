/**
 * SemVer 2.0 ordering. `compareSemver` is what OSV `SEMVER` ranges use whatever the ecosystem,
 * so it is lenient about the shape (as osv-scanner is): optional leading `v`, missing minor or
 * patch count as 0, anything after the third number and build metadata are ignored. `isValid`
 * is strict SemVer 2.0. Strings with no leading number at all sort before every version, and
 * among themselves by plain string order, so the order stays total and nothing throws.
 */
import type { VersionComparator } from './types.js';
import { compareDigitRuns, compareParsedOrRaw, compareStrings, memoize } from './util.js';
import type { Ordering } from './util.js';

export interface SemverParts {
  /** major, minor, patch as digit strings (any length) */
  readonly core: readonly [string, string, string];
  /** prerelease identifiers; empty for a release */
  readonly prerelease: readonly string[];
}

const LAX = /^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.[0-9A-Za-z.]*)?(?:-([^+]*))?(?:\+.*)?\s*$/;
const NUMERIC = /^\d+$/;

export const parseSemverLax = memoize((version: string): SemverParts | undefined => {
  const m = LAX.exec(version);
  if (!m) return undefined;
  const pre = m[4];
  return {
    core: [m[1] ?? '0', m[2] ?? '0', m[3] ?? '0'],
    prerelease: pre === undefined || pre === '' ? [] : pre.split('.'),
  };
});

/** SemVer 2 precedence of prerelease identifier lists (`ignoreCase` for NuGet). */
export function comparePrerelease(a: readonly string[], b: readonly string[], ignoreCase = false): Ordering {
  // A release (no identifiers) is newer than any prerelease of the same core.
  if (a.length === 0 || b.length === 0) return a.length === b.length ? 0 : a.length === 0 ? 1 : -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    const xNum = NUMERIC.test(x);
    const yNum = NUMERIC.test(y);
    let d: Ordering;
    if (xNum && yNum) d = compareDigitRuns(x, y);
    else if (xNum !== yNum) d = xNum ? -1 : 1;
    else d = ignoreCase ? compareStrings(x.toLowerCase(), y.toLowerCase()) : compareStrings(x, y);
    if (d !== 0) return d;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export function compareSemverParts(a: SemverParts, b: SemverParts): Ordering {
  return (
    compareDigitRuns(a.core[0], b.core[0]) ||
    compareDigitRuns(a.core[1], b.core[1]) ||
    compareDigitRuns(a.core[2], b.core[2]) ||
    comparePrerelease(a.prerelease, b.prerelease)
  );
}

export function compareSemver(a: string, b: string): Ordering {
  return compareParsedOrRaw(a, b, parseSemverLax(a), parseSemverLax(b), compareSemverParts);
}

const NUM = '(?:0|[1-9]\\d*)';
const PRE_ID = '(?:0|[1-9]\\d*|\\d*[A-Za-z-][0-9A-Za-z-]*)';
const BUILD_ID = '[0-9A-Za-z-]+';
/** Prerelease and build parts of a SemVer 2 string (shared with the Go comparator). */
export const SEMVER_TAIL = `(?:-${PRE_ID}(?:\\.${PRE_ID})*)?(?:\\+${BUILD_ID}(?:\\.${BUILD_ID})*)?`;
export const SEMVER_CORE = `${NUM}\\.${NUM}\\.${NUM}`;
const STRICT = new RegExp(`^${SEMVER_CORE}${SEMVER_TAIL}$`);

export function isValidSemver(version: string): boolean {
  return STRICT.test(version);
}

/** Generic SemVer 2 (the `SEMVER` range type); also crates.io, whose versions are SemVer 2. */
export const cratesComparator: VersionComparator = {
  ecosystem: 'crates.io',
  compare: compareSemver,
  isValid: isValidSemver,
};
