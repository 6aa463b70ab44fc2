/**
 * Packagist (Composer) versions, ordered like PHP's version_compare() after Composer strips a
 * leading `v`: the string is canonicalized (`-`, `_`, `+` and other punctuation become `.`, and a
 * `.` is inserted at digit/letter transitions), then parts are compared one by one: numbers
 * numerically; words by their special form `dev < alpha = a < beta = b < RC = rc < number <
 * pl = p` (matched by prefix, unknown words lowest). Every string is accepted.
 */
import type { VersionComparator } from './types.js';
import { compareDigitRuns, isAlphaCode, isDigitCode, memoize, negate, sign } from './util.js';
import type { Ordering } from './util.js';

/** PHP's special forms, in its lookup order; `#` stands for a number. */
const SPECIAL_FORMS: ReadonlyArray<readonly [string, number]> = [
  ['dev', 0],
  ['alpha', 1],
  ['a', 1],
  ['beta', 2],
  ['b', 2],
  ['RC', 3],
  ['rc', 3],
  ['#', 4],
  ['pl', 5],
  ['p', 5],
];

function specialForm(part: string): number {
  for (const [name, order] of SPECIAL_FORMS) if (part.startsWith(name)) return order;
  return -1;
}

function canonicalize(version: string): string {
  const v = version.replace(/^[vV]/, '');
  if (v === '') return '';
  let out = v[0] ?? '';
  for (let i = 1; i < v.length; i++) {
    const c = v.charCodeAt(i);
    const prev = v.charCodeAt(i - 1);
    const dot = out.endsWith('.') ? '' : '.';
    if (c === 45 || c === 95 || c === 43 /* - _ + */) out += dot;
    else if (isDigitCode(c) ? !isDigitCode(prev) && prev !== 46 : isDigitCode(prev) && c !== 46)
      out += dot + v[i];
    else if (!isDigitCode(c) && !isAlphaCode(c)) out += dot;
    else out += v[i];
  }
  return out;
}

const parse = memoize((version: string): string[] => {
  const canonical = canonicalize(version);
  return canonical === '' ? [] : canonical.split('.');
});

function comparePart(a: string, b: string): Ordering {
  const an = isDigitCode(a.charCodeAt(0));
  const bn = isDigitCode(b.charCodeAt(0));
  if (an && bn) return compareDigitRuns(a, b);
  return sign((an ? 4 : specialForm(a)) - (bn ? 4 : specialForm(b)));
}

/** A part left over after the common prefix: newer if a number, else ranked against a number. */
function compareRemainder(part: string): Ordering {
  return isDigitCode(part.charCodeAt(0)) ? 1 : sign(specialForm(part) - 4);
}

export const packagistComparator: VersionComparator = {
  ecosystem: 'Packagist',
  compare(a, b) {
    const pa = parse(a);
    const pb = parse(b);
    // PHP: an empty version is older than any other.
    if (pa.length === 0 || pb.length === 0) return sign(pa.length - pb.length);
    const n = Math.min(pa.length, pb.length);
    for (let i = 0; i < n; i++) {
      const d = comparePart(pa[i] as string, pb[i] as string);
      if (d !== 0) return d;
    }
    if (pa.length > n) return compareRemainder(pa[n] as string);
    if (pb.length > n) return negate(compareRemainder(pb[n] as string));
    return 0;
  },
  isValid: (version) => version.trim() !== '',
};
