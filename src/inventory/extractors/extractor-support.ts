/** Small helpers shared by the language package extractors (npm, python, go-binary, java). */
import { ErrorCodes, isContainmentError } from '../../errors.js';
import type { InventoryContext } from '../context.js';
import type { Package } from '../types.js';

/**
 * Reads a file through the safe RootFs. An oversized file is reported with `ctx.note` and skipped
 * (undefined), as is a path that vanished or turned into something other than a regular file.
 */
export async function readFileOrNote(
  ctx: InventoryContext,
  path: string,
  maxBytes: number,
): Promise<Buffer | undefined> {
  try {
    return await ctx.fs.readFile(path, { maxBytes });
  } catch (e) {
    if (isContainmentError(e) && e.code === ErrorCodes.FILE_TOO_LARGE) {
      ctx.note(`skipped ${path}: ${e.message}`);
      return undefined;
    }
    throw e;
  }
}

/** Drops exact duplicates (same name, version and location), keeping the first. */
export function dedupePackages(packages: Package[]): Package[] {
  const seen = new Set<string>();
  return packages.filter((p) => {
    const key = `${p.name}\0${p.version}\0${p.location}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The message of an unknown thrown value, for notes. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
