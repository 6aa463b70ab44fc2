/**
 * Maven versions, per the POM reference's "Version Order Specification" (what maven-artifact's
 * ComparableVersion implements): tokens split at `.`, `-` and digit/letter transitions (a
 * transition counts as `-`), trailing "null" tokens (`0`, ``, `final`, `ga`, `release`) trimmed
 * before each `-`, the shorter version padded with nulls, then
 * `.qualifier < -qualifier < -number < .number` and
 * `alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp < unknown`
 * (unknown qualifiers lexically, all case-insensitive). Every string is a Maven version.
 */
import type { VersionComparator } from './types.js';
import { compareDigitRuns, compareStrings, isDigitCode, memoize } from './util.js';
import type { Ordering } from './util.js';

interface Token {
  /** `.` or `-`; the first token counts as `.` */
  sep: string;
  /** lower-cased qualifier (aliases resolved) or digits without leading zeros */
  value: string;
  numeric: boolean;
  /** padding added while comparing (affects how a number sorts against qualifiers) */
  padding?: true;
}

const QUALIFIERS = ['alpha', 'beta', 'milestone', 'rc', 'snapshot', '', 'sp'];
const ALIASES: Readonly<Record<string, string>> = { cr: 'rc', ga: '', final: '', release: '' };
const SHORT_ALIASES: Readonly<Record<string, string>> = { a: 'alpha', b: 'beta', m: 'milestone' };

function makeToken(sep: string, raw: string, followedByDigit: boolean): Token {
  const numeric = raw !== '' && isDigitCode(raw.charCodeAt(0));
  if (numeric) return { sep, value: raw.replace(/^0+(?=\d)/, ''), numeric };
  if (raw === '') return { sep, value: '0', numeric: true };
  const value = (followedByDigit ? SHORT_ALIASES[raw] : undefined) ?? ALIASES[raw] ?? raw;
  return { sep, value, numeric };
}

function isNull(t: Token): boolean {
  return t.value === '0' || t.value === '';
}

const parse = memoize((version: string): Token[] => {
  const v = version.toLowerCase();
  const tokens: Token[] = [];
  let sep = '.';
  let start = 0;
  for (let i = 0; i <= v.length; i++) {
    const c = i < v.length ? v.charCodeAt(i) : -1;
    if (c === -1 || c === 46 /* . */ || c === 45 /* - */) {
      tokens.push(makeToken(sep, v.slice(start, i), false));
      sep = c === 45 ? '-' : '.';
      start = i + 1;
    } else if (i > start && isDigitCode(c) !== isDigitCode(v.charCodeAt(i - 1))) {
      tokens.push(makeToken(sep, v.slice(start, i), isDigitCode(c)));
      sep = '-';
      start = i;
    }
  }
  // Trim null tokens at the end of each `-` group, from the end towards the start.
  for (let i = tokens.length - 1; i > 0;) {
    if (isNull(tokens[i] as Token)) {
      tokens.splice(i, 1);
      i--;
      continue;
    }
    while (i >= 0 && (tokens[i] as Token).sep !== '-') i--;
    i--;
  }
  return tokens;
});

function padFor(other: Token): Token {
  if (other.sep === '-') return { sep: '-', value: '', numeric: false, padding: true };
  // `sp` is the only qualifier above the release, so `1 < 1.sp` needs an empty padding there.
  return other.value === 'sp'
    ? { sep: '.', value: '', numeric: false, padding: true }
    : { sep: '.', value: '0', numeric: true, padding: true };
}

function sepRank(t: Token): number {
  return t.sep === '.' ? (t.numeric ? 3 : 0) : t.numeric ? 2 : 1;
}

function qualifierRank(value: string): number {
  const i = QUALIFIERS.indexOf(value);
  return i === -1 ? QUALIFIERS.length : i;
}

function compareTokens(a: Token, b: Token): Ordering {
  if (a.sep !== b.sep) return sepRank(a) < sepRank(b) ? -1 : 1;
  if (a.numeric && b.numeric) return compareDigitRuns(a.value, b.value);
  // A real number is newer than any qualifier; a padding 0 is ranked like a qualifier.
  if (a.numeric && !a.padding) return 1;
  if (b.numeric && !b.padding) return -1;
  const ra = qualifierRank(a.value);
  const rb = qualifierRank(b.value);
  if (ra === QUALIFIERS.length && rb === QUALIFIERS.length) return compareStrings(a.value, b.value);
  return ra < rb ? -1 : ra > rb ? 1 : 0;
}

export const mavenComparator: VersionComparator = {
  ecosystem: 'Maven',
  compare(a, b) {
    const ta = parse(a);
    const tb = parse(b);
    const n = Math.max(ta.length, tb.length);
    for (let i = 0; i < n; i++) {
      const x = ta[i] ?? padFor(tb[i] as Token);
      const y = tb[i] ?? padFor(ta[i] as Token);
      if (x.sep === y.sep && x.value === y.value) continue;
      const d = compareTokens(x, y);
      if (d !== 0) return d;
    }
    return 0;
  },
  isValid: (version) => version.trim() !== '',
};
