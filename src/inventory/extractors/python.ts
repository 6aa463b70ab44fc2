/**
 * Installed Python distributions, found by their core metadata wherever they live (site-packages,
 * dist-packages, virtualenvs): `*.dist-info/METADATA` (wheels, modern pip), `*.egg-info/PKG-INFO`
 * (setuptools), a `*.egg-info` file (which is PKG-INFO itself) and `*.egg/EGG-INFO/PKG-INFO`.
 */
import type { InventoryContext, PackageExtractor } from '../context.js';
import type { Package } from '../types.js';
import { StringDecoder } from 'node:string_decoder';
import { ErrorCodes, isContainmentError } from '../../errors.js';
import { dedupePackages, reportNotAFile } from './extractor-support.js';

const ID = 'python';
/**
 * Only the header block is read (streamed up to the blank line before the long description);
 * headers past this are a record over the limit. Metadata 1.x keeps Description as a header.
 */
const MAX_HEADER_BYTES = 4 * 1024 * 1024;
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

/**
 * Name and Version from the header block of a metadata file, streamed: reading stops at the blank
 * line (or once both are seen), so a huge description is never read. Undefined when a gap was
 * recorded (unreadable, headers over the limit).
 */
async function readMetadataHeaders(
  ctx: InventoryContext,
  path: string,
): Promise<{ meta?: { name: string; version: string } } | undefined> {
  const decoder = new StringDecoder('utf8');
  let text = '';
  try {
    for await (const chunk of ctx.fs.readChunks(path, { chunkBytes: 64 * 1024 })) {
      text += decoder.write(chunk);
      const end = text.search(/\r?\n[ \t]*\r?\n/);
      if (end !== -1) return { meta: parsePythonMetadata(text.slice(0, end)) };
      const meta = parsePythonMetadata(text.slice(0, text.lastIndexOf('\n') + 1));
      if (meta) return { meta };
      if (text.length > MAX_HEADER_BYTES) {
        ctx.gap(
          'PACKAGE_RECORD_TOO_LARGE',
          ID,
          path,
          `no Name/Version in the first ${MAX_HEADER_BYTES} bytes`,
        );
        return undefined;
      }
    }
  } catch (e) {
    if (!isContainmentError(e)) throw e;
    const code = e.code === ErrorCodes.FILE_NOT_REGULAR ? 'PACKAGE_DB_NOT_A_FILE' : 'PACKAGE_DB_UNREADABLE';
    ctx.gap(code, ID, path, e.message);
    return undefined;
  }
  return { meta: parsePythonMetadata(text + decoder.end()) };
}

export const pythonExtractor: PackageExtractor = {
  id: ID,
  relevant: ({ path }) => METADATA_RE.test(path),
  async extract(ctx: InventoryContext): Promise<Package[]> {
    const packages: Package[] = [];
    for (const { path, stat } of ctx.files) {
      if (!METADATA_RE.test(path)) continue;
      // A `.egg-info` directory is the usual form (its PKG-INFO matches too); METADATA never is one.
      if (stat.type === 'other' || (stat.type === 'directory' && !path.endsWith('.egg-info'))) {
        reportNotAFile(ctx, ID, path, stat);
      }
      if (stat.type !== 'file') continue;
      const read = await readMetadataHeaders(ctx, path);
      if (!read) continue;
      const { meta } = read;
      if (!meta) {
        ctx.gap('PACKAGE_RECORD_INVALID', ID, path, 'no Name/Version header');
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
