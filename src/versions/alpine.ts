/**
 * apk-tools version ordering (Alpine, Wolfi, Chainguard):
 * `digit{.digit}...{letter}{_suffix{digits}}...{~hash}{-r#}`.
 *
 * This follows apk-tools 3 (src/version.c) token by token, including what it does with strings
 * outside that grammar: a malformed token becomes INVALID and ends the comparison (two strings
 * that go wrong at the same token compare equal from there; an invalid tail sorts below the end
 * of a version, `1-ruff < 1`). Nothing throws. Two shapes that apk-tools 3 rejects but real
 * Alpine packages carry (`6.6.2p1-r0`, `10.2.22.r0`) are compared the way apk-tools 2 (Alpine
 * 3.x) compares them instead, see `tokenize`; `isValid` still says what apk-tools 3 says.
 */
import type { VersionComparator } from './types.js';
import { compareDigitRuns, compareStrings, isDigitCode, memoize } from './util.js';
import type { Ordering } from './util.js';

// Token kinds, in apk's order: the order itself decides who is "longer" at the end.
const INITIAL_DIGIT = 0;
const DIGIT = 1;
const LETTER = 2;
const SUFFIX = 3;
const SUFFIX_NO = 4;
const COMMIT_HASH = 5;
const REVISION_NO = 6;
const END = 7;
const INVALID = 8;

/** Suffix weights: pre-release suffixes below NONE, post-release ones above. */
const SUFFIX_NONE = 5;
const SUFFIXES = new Map<string, number>([
  ['alpha', 1],
  ['beta', 2],
  ['pre', 3],
  ['rc', 4],
  ['cvs', 6],
  ['svn', 7],
  ['git', 8],
  ['hg', 9],
  ['p', 10],
]);

interface Token {
  kind: number;
  /** digits, letter, suffix word or hash text */
  value: string;
  suffix: number;
}

function isLowerCode(c: number): boolean {
  return c >= 97 && c <= 122;
}

function isHexCode(c: number): boolean {
  return isDigitCode(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

function scan(s: string, from: number, accept: (c: number) => boolean): number {
  let i = from;
  while (i < s.length && accept(s.charCodeAt(i))) i++;
  return i;
}

interface Tokenized {
  tokens: Token[];
  /** false when a lenient rule (below) was needed: apk-tools 3 would call the string invalid */
  strict: boolean;
}

/**
 * Tokenizes a version the way apk-tools 3's token_first/token_next do, ending with END or INVALID,
 * with apk-tools 2's leniency where version 3 gives up (`strict` is then false): a letter may be
 * followed by digits (`6.6.2p1`, real Alpine versions), and an empty number (`0..8`, `.1`,
 * `0.8.21.r2`) counts as 0. Without this, `6.6.2p1-r0` and `6.6.2p1-r1` would compare
 * equal, because apk-tools 3 stops comparing at the first invalid token.
 */
function tokenize(s: string): Tokenized {
  const tokens: Token[] = [];
  let strict = true;
  let pos = scan(s, 0, isDigitCode);
  if (pos === 0) strict = false;
  let kind = INITIAL_DIGIT;
  tokens.push({ kind, value: s.slice(0, pos), suffix: 0 });
  while (kind < END) {
    let value = '';
    let suffix = 0;
    const prev = kind;
    kind = INVALID;
    if (pos >= s.length) {
      kind = END;
    } else {
      const c = s.charCodeAt(pos);
      if (isLowerCode(c)) {
        if (prev <= DIGIT) {
          kind = LETTER;
          value = s[pos] ?? '';
          pos++;
        }
      } else if (c === 46 /* . */ || isDigitCode(c)) {
        const start = c === 46 ? pos + 1 : pos;
        const allowed = c === 46 ? prev <= DIGIT : prev <= DIGIT || prev === SUFFIX || prev === LETTER;
        const end = scan(s, start, isDigitCode);
        if (allowed) {
          kind = prev === SUFFIX ? SUFFIX_NO : DIGIT;
          value = s.slice(start, end);
          pos = end;
          if (end === start || prev === LETTER) strict = false;
        }
      } else if (c === 95 /* _ */) {
        const end = scan(s, pos + 1, isLowerCode);
        suffix = SUFFIXES.get(s.slice(pos + 1, end)) ?? 0;
        if (prev <= SUFFIX_NO && suffix !== 0) {
          kind = SUFFIX;
          value = s.slice(pos + 1, end);
          pos = end;
        }
      } else if (c === 126 /* ~ */) {
        const end = scan(s, pos + 1, isHexCode);
        if (prev < COMMIT_HASH && end > pos + 1) {
          kind = COMMIT_HASH;
          value = s.slice(pos + 1, end);
          pos = end;
        }
      } else if (c === 45 /* - */ && prev < REVISION_NO && s.charCodeAt(pos + 1) === 114 /* r */) {
        const end = scan(s, pos + 2, isDigitCode);
        if (end > pos + 2) {
          kind = REVISION_NO;
          value = s.slice(pos + 2, end);
          pos = end;
        }
      }
    }
    tokens.push({ kind, value, suffix });
  }
  return { tokens, strict: strict && kind === END };
}

const tokens = memoize(tokenize);

function compareTokens(kind: number, a: Token, b: Token): Ordering {
  switch (kind) {
    case DIGIT:
      // A leading zero makes apk compare the digits as a string (Gentoo rule): 1.02 < 1.1.
      if (a.value.startsWith('0') || b.value.startsWith('0')) return compareStrings(a.value, b.value);
      return compareDigitRuns(a.value, b.value);
    case INITIAL_DIGIT:
    case SUFFIX_NO:
    case REVISION_NO:
      return compareDigitRuns(a.value, b.value);
    case SUFFIX:
      return a.suffix < b.suffix ? -1 : a.suffix > b.suffix ? 1 : 0;
    default:
      // LETTER and COMMIT_HASH: bytewise.
      return compareStrings(a.value, b.value);
  }
}

/**
 * apk's comparison. With `fuzzy`, `b` is a prefix pattern: `3.6.9 ~ 3.6` (apk's `~` operator).
 */
export function compareAlpine(a: string, b: string, fuzzy = false): Ordering {
  const ta = tokens(a).tokens;
  const tb = tokens(b).tokens;
  let i = 0;
  let x = ta[0] as Token;
  let y = tb[0] as Token;
  while (x.kind === y.kind && x.kind < END) {
    const d = compareTokens(x.kind, x, y);
    if (d !== 0) return d;
    i++;
    x = ta[i] as Token;
    y = tb[i] as Token;
  }
  if (x.kind === y.kind) return 0;
  if (y.kind === END && fuzzy) return 0;
  // Equal so far: the longer version is newer, unless what follows is a pre-release suffix.
  if (x.kind === SUFFIX && x.suffix < SUFFIX_NONE) return -1;
  if (y.kind === SUFFIX && y.suffix < SUFFIX_NONE) return 1;
  return x.kind > y.kind ? -1 : 1;
}

export const alpineComparator: VersionComparator = {
  ecosystem: 'Alpine',
  compare: (a, b) => compareAlpine(a, b),
  isValid: (version) => tokens(version).strict,
};

/** OSV ecosystems whose packages carry apk versions. */
export const apkEcosystems = ['Alpine', 'Wolfi', 'Chainguard', 'MinimOS', 'Alpaquita'] as const;
