/**
 * Go module versions (golang.org/x/mod/semver), with or without the leading `v` (the Go tooling
 * requires it, OSV records omit it). `v1` and `v1.2` are shorthands for `v1.0.0` and `v1.2.0`;
 * build metadata such as `+incompatible` is ignored; pseudo-versions
 * (`v0.0.0-20210101000000-abcdef123456`) are ordinary prereleases and sort as such.
 */
import { SEMVER_CORE, SEMVER_TAIL, compareSemver } from './semver.js';
import type { VersionComparator } from './types.js';

const NUM = '(?:0|[1-9]\\d*)';
// Go accepts the shorthands only without prerelease or build suffix.
const VALID = new RegExp(`^v?(?:${NUM}|${NUM}\\.${NUM}|${SEMVER_CORE}${SEMVER_TAIL})$`);

export const goComparator: VersionComparator = {
  ecosystem: 'Go',
  compare: compareSemver,
  isValid: (version) => VALID.test(version),
};
