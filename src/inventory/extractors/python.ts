/**
 * Installed Python distributions, found by their core metadata wherever they live (site-packages,
 * dist-packages, virtualenvs): `*.dist-info/METADATA` (wheels, modern pip), `*.egg-info/PKG-INFO`
 * (setuptools), a `*.egg-info` file (which is PKG-INFO itself) and `*.egg/EGG-INFO/PKG-INFO`.
 */
import type { InventoryContext, PackageExtractor } from '../context.js';
import type { Package } from '../types.js';
import { dedupePackages, readFileOrNote } from './extractor-support.js';

const ID = 'python';
/** Metadata carries the long description after the headers; a few MiB is plenty. */
const MAX_METADATA_BYTES = 4 * 1024 * 1024;
const METADATA_RE = /(?:\.dist-info\/METADATA|\.egg-info\/PKG-INFO|\.egg\/EGG-INFO\/PKG-INFO|\.egg-info)$/;

/**
 * `Name` and `Version` of a core-metadata document (RFC 822 style headers): the first occurrence
 * of each, header names case-insensitive, reading stops at the blank line before the body.
 */
export function parsePythonMetadata(text: string): { name: string; version: string } | undefined {
  let name: string | undefined;
  let version: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0 || /^\s/.test(line)) continue; // continuation line or garbage
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'name' && name === undefined) name = value;
    else if (key === 'version' && version === undefined) version = value;
  }
  return name && version ? { name, version } : undefined;
}

/** PEP 503 normalised project name: lower case, runs of `-`, `_`, `.` become one `-`. */
export function normalizePythonName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

export function pypiPurl(name: string, version: string): string {
  return `pkg:pypi/${encodeURIComponent(normalizePythonName(name))}@${encodeURIComponent(version)}`;
}

export const pythonExtractor: PackageExtractor = {
  id: ID,
  async extract(ctx: InventoryContext): Promise<Package[]> {
    const packages: Package[] = [];
    for (const { path, stat } of ctx.files) {
      if (stat.type !== 'file' || !METADATA_RE.test(path)) continue;
      const buffer = await readFileOrNote(ctx, path, MAX_METADATA_BYTES);
      if (!buffer) continue;
      const meta = parsePythonMetadata(buffer.toString('utf8'));
      if (!meta) {
        ctx.note(`skipped ${path}: no Name/Version header`);
        continue;
      }
      packages.push({
        name: meta.name,
        version: meta.version,
        ecosystem: 'PyPI',
        purl: pypiPurl(meta.name, meta.version),
        location: path,
        extractor: ID,
      });
    }
    return dedupePackages(packages);
  },
};
