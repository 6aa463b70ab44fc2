/** A version comparator for one ecosystem. Pure: no I/O. */
export interface VersionComparator {
  /** The OSV ecosystem name without release suffix (`Debian`, `npm`, `PyPI`, …). */
  readonly ecosystem: string;
  /** -1, 0 or 1. Must be a total order over the versions `isValid` accepts. */
  compare(a: string, b: string): -1 | 0 | 1;
  /** Whether the string is a version of this ecosystem (best effort where the ecosystem is lax). */
  isValid(version: string): boolean;
}
