/**
 * NuGet versions: up to four numeric parts (missing ones are 0, leading zeros allowed), an
 * optional SemVer prerelease compared case-insensitively, build metadata ignored. Invalid
 * strings sort before every valid version, among themselves by plain string order.
 */
import { comparePrerelease } from './semver.js';
import type { VersionComparator } from './types.js';
import { compareDigitRuns, compareParsedOrRaw, memoize } from './util.js';
import type { Ordering } from './util.js';

const VERSION =
  /^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\s*$/;

interface NugetVersion {
  numbers: [string, string, string, string];
  prerelease: string[];
}

const parse = memoize((version: string): NugetVersion | undefined => {
  const m = VERSION.exec(version);
  if (!m) return undefined;
  return {
    numbers: [m[1] ?? '0', m[2] ?? '0', m[3] ?? '0', m[4] ?? '0'],
    prerelease: m[5] === undefined ? [] : m[5].split('.'),
  };
});

function compareNuget(a: NugetVersion, b: NugetVersion): Ordering {
  for (let i = 0; i < 4; i++) {
    const d = compareDigitRuns(a.numbers[i] as string, b.numbers[i] as string);
    if (d !== 0) return d;
  }
  return comparePrerelease(a.prerelease, b.prerelease, true);
}

export const nugetComparator: VersionComparator = {
  ecosystem: 'NuGet',
  compare: (a, b) => compareParsedOrRaw(a, b, parse(a), parse(b), compareNuget),
  isValid: (version) => parse(version) !== undefined,
};
