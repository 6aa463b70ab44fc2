/**
 * dpkg version ordering (`[epoch:]upstream[-revision]`), as `dpkg --compare-versions` does it:
 * epochs numerically, then upstream and revision with dpkg's verrevcmp (`~` sorts before
 * everything including the end of the string, letters before other characters, digit runs
 * numerically). Used for Debian and Ubuntu.
 */
import type { VersionComparator } from './types.js';
import { compareDigitRuns, isAlphaCode, isDigitCode, memoize, sign } from './util.js';
import type { Ordering } from './util.js';

interface DpkgVersion {
  epoch: string;
  upstream: string;
  revision: string;
}

const parse = memoize((version: string): DpkgVersion => {
  const v = version.trim();
  const colon = v.indexOf(':');
  const epoch = colon === -1 ? '' : v.slice(0, colon);
  const rest = colon === -1 ? v : v.slice(colon + 1);
  const dash = rest.lastIndexOf('-');
  return dash === -1
    ? { epoch, upstream: rest, revision: '' }
    : { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) };
});

/** dpkg's character weight: `~` lowest, end/digit 0, letters by code, others after letters. */
function order(s: string, i: number): number {
  if (i >= s.length) return 0;
  const c = s.charCodeAt(i);
  if (isDigitCode(c)) return 0;
  if (isAlphaCode(c)) return c;
  if (c === 126 /* ~ */) return -1;
  return c + 256;
}

function verrevcmp(a: string, b: string): Ordering {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (
      (i < a.length && !isDigitCode(a.charCodeAt(i))) ||
      (j < b.length && !isDigitCode(b.charCodeAt(j)))
    ) {
      const d = order(a, i) - order(b, j);
      if (d !== 0) return sign(d);
      i++;
      j++;
    }
    const si = i;
    const sj = j;
    while (i < a.length && isDigitCode(a.charCodeAt(i))) i++;
    while (j < b.length && isDigitCode(b.charCodeAt(j))) j++;
    const d = compareDigitRuns(a.slice(si, i), b.slice(sj, j));
    if (d !== 0) return d;
  }
  return 0;
}

// dpkg's parseversion: numeric epoch, upstream starting with a digit, restricted alphabets
// (a revision, when a `-` is present, must be non-empty and has no `-` or `:`).
const VALID = /^(?:\d+:)?\d[A-Za-z0-9.+~-]*$/;

/** OSV ecosystems whose packages are dpkg packages. */
export const dpkgEcosystems = ['Debian', 'Ubuntu'] as const;

export const debianComparator: VersionComparator = {
  ecosystem: 'Debian',
  compare(a, b) {
    const va = parse(a);
    const vb = parse(b);
    return (
      compareDigitRuns(va.epoch, vb.epoch) ||
      verrevcmp(va.upstream, vb.upstream) ||
      verrevcmp(va.revision, vb.revision)
    );
  },
  isValid(version) {
    const v = version.trim();
    return VALID.test(v) && !v.endsWith('-');
  },
};
