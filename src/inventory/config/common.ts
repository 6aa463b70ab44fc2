/** Small helpers shared by the configuration checks. */
import { ErrorCodes, isContainmentError } from '../../errors.js';
import type { ConfigCheck, ConfigCheckContext } from '../context.js';
import type { InsecureConfiguration, Severity } from '../types.js';

/** At most this many evidence paths per finding; the rest are counted in `details`. */
export const MAX_EVIDENCE = 50;

/** True when `path` is `prefix` itself or lies below it (both absolute in-root paths). */
export function isUnder(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return path === prefix || path.startsWith(prefix + '/');
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * Reads a text file through the safe root view. A file over the limit is skipped with a note
 * instead of failing the whole scan: configuration files of interest are small.
 */
export async function readSmallText(
  ctx: ConfigCheckContext,
  path: string,
  maxBytes = 1024 * 1024,
): Promise<string | undefined> {
  try {
    return await ctx.fs.readText(path, { maxBytes });
  } catch (e) {
    if (isContainmentError(e) && e.code === ErrorCodes.FILE_TOO_LARGE) {
      ctx.note(`configuration checks skipped ${path}: ${e.message}`);
      return undefined;
    }
    throw e;
  }
}

export type CheckInfo = Pick<ConfigCheck, 'id' | 'severity' | 'title'>;

/**
 * Builds a finding of `check`. Evidence is de-duplicated and capped at MAX_EVIDENCE paths (a
 * tree of thousands of world-writable directories must not make a huge report); `details` then
 * says how many were left out. `severity` overrides the check's usual one when the case is worse
 * or milder.
 */
export function finding(
  check: CheckInfo,
  paths: readonly string[],
  details: string,
  severity: Severity = check.severity,
): InsecureConfiguration {
  const unique = [...new Set(paths)];
  const more = unique.length > MAX_EVIDENCE ? ` (and ${unique.length - MAX_EVIDENCE} more not listed)` : '';
  return {
    id: check.id,
    severity,
    title: check.title,
    evidence: unique.slice(0, MAX_EVIDENCE),
    details: details + more,
  };
}

/** Joins the first MAX_EVIDENCE items for `details` (finding() says how many more there are). */
export function listSome(items: readonly string[]): string {
  return items.slice(0, MAX_EVIDENCE).join(', ');
}
