/** Small helpers shared by the comparators. Pure. */

export type Ordering = -1 | 0 | 1;

export function sign(n: number): Ordering {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

export function negate(o: Ordering): Ordering {
  return o === 0 ? 0 : o === 1 ? -1 : 1;
}

/** Plain code-unit comparison (bytewise for ASCII, like C's strcmp). */
export function compareStrings(a: string, b: string): Ordering {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Numeric comparison of two runs of ASCII digits of any length (no precision loss, so
 * `999999999999999999999999999991 < 999999999999999999999999999999` holds). Empty counts as 0.
 */
export function compareDigitRuns(a: string, b: string): Ordering {
  let i = 0;
  let j = 0;
  while (i < a.length && a.charCodeAt(i) === 48) i++;
  while (j < b.length && b.charCodeAt(j) === 48) j++;
  const la = a.length - i;
  const lb = b.length - j;
  if (la !== lb) return la < lb ? -1 : 1;
  for (; i < a.length; i++, j++) {
    const d = a.charCodeAt(i) - b.charCodeAt(j);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

export function isAlphaCode(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** Orders parsed versions; unparseable ones (undefined) first, among themselves by string. */
export function compareParsedOrRaw<T>(
  a: string,
  b: string,
  pa: T | undefined,
  pb: T | undefined,
  compare: (x: T, y: T) => Ordering,
): Ordering {
  if (pa !== undefined && pb !== undefined) return compare(pa, pb);
  if (pa !== undefined) return 1;
  if (pb !== undefined) return -1;
  return compareStrings(a, b);
}

/**
 * Wraps a parser with a bounded cache: matching compares the same few thousand version strings
 * millions of times. When full, the cache is simply cleared (cheap, and keeps memory bounded).
 */
export function memoize<T>(parse: (version: string) => T, limit = 8192): (version: string) => T {
  const cache = new Map<string, T>();
  return (version) => {
    const hit = cache.get(version);
    if (hit !== undefined || cache.has(version)) return hit as T;
    if (cache.size >= limit) cache.clear();
    const parsed = parse(version);
    cache.set(version, parsed);
    return parsed;
  };
}
