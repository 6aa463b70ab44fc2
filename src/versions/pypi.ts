/**
 * PyPI versions: PEP 440 ordering (via @renovatebot/pep440, checked against pypa/packaging's own
 * test list). Strings PEP 440 rejects ("legacy" versions such as `0.9-doduo`, `2013-01-21T20:33:09`,
 * `0.3m1`) still exist on PyPI and in advisories. We order them as pip/packaging did while it still
 * had `LegacyVersion` (packaging < 22): every legacy version sorts before every PEP 440 version, and
 * legacy versions among themselves by setuptools' old `parse_version` key. That is the order the
 * Python tools used when these releases were published, and it keeps the order total.
 */
import { compare as pep440Compare, valid as pep440Valid } from '@renovatebot/pep440';
import type { VersionComparator } from './types.js';
import { compareStrings, memoize } from './util.js';
import type { Ordering } from './util.js';

const LEGACY_COMPONENT = /(\d+|[a-z]+|\.|-)/;
const LEGACY_REPLACEMENTS: Readonly<Record<string, string>> = {
  pre: 'c',
  preview: 'c',
  '-': 'final-',
  rc: 'c',
  dev: '@',
};

/** setuptools' legacy sort key: zero-padded numbers, `*`-prefixed words, trailing zeros dropped. */
function legacyKey(version: string): string[] {
  const parts: string[] = [];
  const raw = version.toLowerCase().split(LEGACY_COMPONENT);
  raw.push('*final');
  for (const piece of raw) {
    let part = LEGACY_REPLACEMENTS[piece] ?? piece;
    if (part === '' || part === '.') continue;
    if (part !== '*final') part = /^\d/.test(part) ? part.padStart(8, '0') : `*${part}`;
    if (part.startsWith('*')) {
      if (part < '*final') while (parts[parts.length - 1] === '*final-') parts.pop();
      while (parts[parts.length - 1] === '00000000') parts.pop();
    }
    parts.push(part);
  }
  return parts;
}

/** undefined for a valid PEP 440 version, else its legacy key. */
const legacy = memoize((version: string): string[] | undefined =>
  pep440Valid(version) === null ? legacyKey(version) : undefined,
);

function compareKeys(a: readonly string[], b: readonly string[]): Ordering {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = compareStrings(a[i] as string, b[i] as string);
    if (d !== 0) return d;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export const pypiComparator: VersionComparator = {
  ecosystem: 'PyPI',
  compare(a, b) {
    const la = legacy(a);
    const lb = legacy(b);
    if (la === undefined && lb === undefined) {
      const d = pep440Compare(a, b);
      return d < 0 ? -1 : d > 0 ? 1 : 0;
    }
    if (la === undefined) return 1;
    if (lb === undefined) return -1;
    return compareKeys(la, lb);
  },
  isValid: (version) => legacy(version) === undefined,
};
