/**
 * RPM version ordering: `[epoch:]version[-release]`, each part compared with rpmvercmp
 * (alphanumeric segments, digits numerically and above letters, `~` sorts before everything,
 * `^` after the base version but before any further segment). Used by every RPM-based OSV
 * ecosystem (Red Hat, Rocky Linux, AlmaLinux, openSUSE, SUSE, Photon OS, Mageia, openEuler).
 */
import type { VersionComparator } from './types.js';
import { compareDigitRuns, isAlphaCode, isDigitCode, memoize } from './util.js';
import type { Ordering } from './util.js';

const TILDE = 126;
const CARET = 94;

function isSegmentCode(c: number): boolean {
  return isDigitCode(c) || isAlphaCode(c) || c === TILDE || c === CARET;
}

/** rpm's rpmvercmp on one field (version or release). */
export function rpmvercmp(a: string, b: string): Ordering {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (i < a.length && !isSegmentCode(a.charCodeAt(i))) i++;
    while (j < b.length && !isSegmentCode(b.charCodeAt(j))) j++;
    const ca = i < a.length ? a.charCodeAt(i) : -1;
    const cb = j < b.length ? b.charCodeAt(j) : -1;
    if (ca === TILDE || cb === TILDE) {
      if (ca !== TILDE) return 1;
      if (cb !== TILDE) return -1;
      i++;
      j++;
      continue;
    }
    if (ca === CARET || cb === CARET) {
      if (ca === -1) return -1;
      if (cb === -1) return 1;
      if (ca !== CARET) return 1;
      if (cb !== CARET) return -1;
      i++;
      j++;
      continue;
    }
    if (ca === -1 || cb === -1) break;
    const numeric = isDigitCode(ca);
    const same = numeric ? isDigitCode : isAlphaCode;
    const si = i;
    const sj = j;
    while (i < a.length && same(a.charCodeAt(i))) i++;
    while (j < b.length && same(b.charCodeAt(j))) j++;
    // Segments of different kinds: a number is newer than letters.
    if (j === sj) return numeric ? 1 : -1;
    const sa = a.slice(si, i);
    const sb = b.slice(sj, j);
    const d = numeric ? compareDigitRuns(sa, sb) : sa < sb ? -1 : sa > sb ? 1 : 0;
    if (d !== 0) return d;
  }
  const endA = i >= a.length;
  const endB = j >= b.length;
  if (endA && endB) return 0;
  return endA ? -1 : 1;
}

interface Evr {
  epoch: string;
  version: string;
  /** undefined when the string has no `-`: such a version sorts before any with a release. */
  release: string | undefined;
}

const NUMERIC = /^\d+$/;

const parse = memoize((evr: string): Evr => {
  const colon = evr.indexOf(':');
  // Only a numeric prefix is an epoch; other colons (module streams …) belong to the version.
  const hasEpoch = colon !== -1 && NUMERIC.test(evr.slice(0, colon));
  const epoch = hasEpoch ? evr.slice(0, colon) : '';
  const rest = hasEpoch ? evr.slice(colon + 1) : evr;
  const dash = rest.lastIndexOf('-');
  return dash === -1
    ? { epoch, version: rest, release: undefined }
    : { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) };
});

const VALID = /^(?:\d+:)?[A-Za-z0-9._+~^]+(?:-[A-Za-z0-9._+~^]+)?$/;

export const rpmComparator: VersionComparator = {
  ecosystem: 'Red Hat',
  compare(a, b) {
    const va = parse(a);
    const vb = parse(b);
    const d = compareDigitRuns(va.epoch, vb.epoch) || rpmvercmp(va.version, vb.version);
    if (d !== 0) return d;
    if (va.release === undefined || vb.release === undefined) {
      return va.release === vb.release ? 0 : va.release === undefined ? -1 : 1;
    }
    return rpmvercmp(va.release, vb.release);
  },
  isValid(version) {
    return VALID.test(version);
  },
};

/** OSV ecosystems whose packages are RPMs. */
export const rpmEcosystems = [
  'Red Hat',
  'Rocky Linux',
  'AlmaLinux',
  'openSUSE',
  'SUSE',
  'Photon OS',
  'Mageia',
  'openEuler',
  'Azure Linux',
] as const;
