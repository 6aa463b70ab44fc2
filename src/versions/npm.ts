/**
 * npm versions: node-semver's strict SemVer 2 parsing (a leading `v` is accepted, `=` and
 * surrounding junk are not) and its ordering. Strings node-semver rejects sort before every
 * valid version, among themselves by plain string order, instead of throwing mid-scan.
 */
import semver from 'semver';
import type { VersionComparator } from './types.js';
import { compareParsedOrRaw, memoize } from './util.js';

const parse = memoize((version: string) => semver.parse(version) ?? undefined);

export const npmComparator: VersionComparator = {
  ecosystem: 'npm',
  compare: (a, b) => compareParsedOrRaw(a, b, parse(a), parse(b), (x, y) => x.compare(y)),
  isValid: (version) => parse(version) !== undefined,
};
