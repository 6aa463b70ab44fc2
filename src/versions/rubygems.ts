/**
 * RubyGems versions (Gem::Version): dot-separated segments of digits or letters; a letter
 * segment makes a prerelease (`1.0.a < 1.0`); `-` means `.pre.`; trailing zeros of the numeric
 * and of the prerelease part are ignored. Invalid strings sort before every valid version,
 * among themselves by plain string order.
 */
import type { VersionComparator } from './types.js';
import { compareDigitRuns, compareParsedOrRaw, compareStrings, isDigitCode, memoize } from './util.js';
import type { Ordering } from './util.js';

const VALID = /^\s*(?:[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?\s*$/;
const SEGMENT = /[0-9]+|[a-z]+/gi;

/** Segments; numbers are kept as digit strings without leading zeros (`isNum` tells which). */
interface Segments {
  values: string[];
  isNum: boolean[];
}

function dropTrailingZeros(s: Segments, from: number, to: number): Segments {
  let end = to;
  while (end > from && s.isNum[end - 1] && s.values[end - 1] === '0') end--;
  return { values: s.values.slice(from, end), isNum: s.isNum.slice(from, end) };
}

const parse = memoize((version: string): Segments | undefined => {
  if (!VALID.test(version)) return undefined;
  const v = version.trim() === '' ? '0' : version.trim().replaceAll('-', '.pre.');
  const all: Segments = { values: [], isNum: [] };
  for (const m of v.matchAll(SEGMENT)) {
    const num = isDigitCode(m[0].charCodeAt(0));
    all.values.push(num ? m[0].replace(/^0+(?=\d)/, '') : m[0]);
    all.isNum.push(num);
  }
  // Gem::Version#canonical_segments: trim zeros of the release and of the prerelease part.
  const firstString = all.isNum.indexOf(false);
  const split = firstString === -1 ? all.values.length : firstString;
  const release = dropTrailingZeros(all, 0, split);
  const pre = dropTrailingZeros(all, split, all.values.length);
  return { values: [...release.values, ...pre.values], isNum: [...release.isNum, ...pre.isNum] };
});

function compareSegments(a: Segments, b: Segments): Ordering {
  const n = Math.max(a.values.length, b.values.length);
  for (let i = 0; i < n; i++) {
    const av = a.values[i] ?? '0';
    const bv = b.values[i] ?? '0';
    const an = a.isNum[i] ?? true;
    const bn = b.isNum[i] ?? true;
    if (an !== bn) return an ? 1 : -1;
    const d = an ? compareDigitRuns(av, bv) : compareStrings(av, bv);
    if (d !== 0) return d;
  }
  return 0;
}

export const rubygemsComparator: VersionComparator = {
  ecosystem: 'RubyGems',
  compare: (a, b) => compareParsedOrRaw(a, b, parse(a), parse(b), compareSegments),
  isValid: (version) => parse(version) !== undefined,
};
