/**
 * Maven artifacts inside Java archives (`.jar`, `.war`, `.ear`), identified only by the
 * `META-INF/maven/<groupId>/<artifactId>/pom.properties` files Maven writes into every artifact
 * it builds (shaded "uber" jars keep those of what they embed, so those are reported too).
 * Nested archives (`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`, an EAR's modules) are opened
 * recursively, within a depth limit and a budget of decompressed bytes per top-level archive.
 *
 * Archives without pom.properties are NOT guessed from the manifest or the file name: those
 * heuristics name the wrong artifact often enough to flood users with false positives (see
 * NeuVector issue #2205). They are listed in a note instead, so nothing is silently missed.
 *
 * Entry names are never used as paths to write to; names with `..` or absolute paths are simply
 * ignored.
 */
import yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';
import type { InventoryContext, PackageExtractor } from '../context.js';
import type { Package } from '../types.js';
import { dedupePackages, errorMessage, readFileOrNote, reportNotAFile } from './extractor-support.js';

const ID = 'java';
const ARCHIVE_RE = /\.(?:jar|war|ear)$/i;
const POM_PROPERTIES_RE = /^META-INF\/maven\/([^/]+)\/([^/]+)\/pom\.properties$/;
const MAX_POM_PROPERTIES_BYTES = 64 * 1024;
const MAX_ARCHIVE_BYTES = 256 * 1024 * 1024;
/** How many archives without Maven metadata one note names before summarising. */
const LISTED_EMPTY = 5;

export interface ArchiveLimits {
  /** Nesting levels opened below the top-level archive (an EAR's WAR's JAR is 2). */
  maxDepth: number;
  /** Decompressed bytes read from one top-level archive, nested ones included. */
  maxTotalBytes: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = { maxDepth: 3, maxTotalBytes: 512 * 1024 * 1024 };

export interface MavenArtifact {
  groupId: string;
  artifactId: string;
  version: string;
  /** The archive path, with `!/<entry>` for each nested archive. */
  location: string;
}

/** Java `.properties` subset used by pom.properties: `key=value`, `key: value`, `#`/`!` comments. */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([^#!\s=:][^=:\s]*)\s*[=:\s]\s*(.*?)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined && !out.has(m[1])) out.set(m[1], m[2]);
  }
  return out;
}

interface ScanState {
  limits: ArchiveLimits;
  usedBytes: number;
  exhausted: boolean;
  artifacts: MavenArtifact[];
  /** Archives (top-level or nested) in which nothing was found. */
  empty: string[];
  notes: string[];
  /** Problems that may hide packages (corrupt archive, limits reached): gaps of the inventory. */
  gaps: JavaArchiveGap[];
}

export interface JavaArchiveGap {
  code: 'PACKAGE_DB_CORRUPT' | 'PACKAGE_DB_TOO_LARGE' | 'PACKAGE_RECORD_TOO_LARGE' | 'PACKAGE_RECORD_INVALID';
  message: string;
}

/** Reads an entry in full after charging it to the decompressed-bytes budget. */
async function readEntry(
  zip: ZipFile,
  entry: Entry,
  state: ScanState,
  location: string,
): Promise<Buffer | undefined> {
  // yauzl checks the inflated stream against the declared size, so the declared size is binding.
  if (state.usedBytes + entry.uncompressedSize > state.limits.maxTotalBytes) {
    state.exhausted = true;
    state.gaps.push({
      code: 'PACKAGE_DB_TOO_LARGE',
      message: `${location}: stopped, over the ${state.limits.maxTotalBytes}-byte decompression budget (possible zip bomb)`,
    });
    return undefined;
  }
  state.usedBytes += entry.uncompressedSize;
  const chunks: Buffer[] = [];
  for await (const chunk of await zip.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function scanArchive(buffer: Buffer, location: string, depth: number, state: ScanState): Promise<void> {
  let zip: ZipFile;
  try {
    // decodeStrings: false so that a hostile entry name (`../x`) is skipped here instead of
    // yauzl rejecting the whole archive.
    zip = await yauzl.fromBufferPromise(buffer, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
    });
  } catch (e) {
    state.gaps.push({
      code: 'PACKAGE_DB_CORRUPT',
      message: `${location}: not a readable zip archive (${errorMessage(e)})`,
    });
    return;
  }
  const found = state.artifacts.length;
  try {
    for await (const entry of zip.eachEntry()) {
      if (state.exhausted) break;
      const name = yauzl.getFileNameLowLevel(
        entry.generalPurposeBitFlag,
        entry.fileNameRaw,
        entry.extraFields,
        false,
      );
      if (yauzl.validateFileName(name) !== null) continue;
      const entryLocation = `${location}!/${name}`;
      const pom = POM_PROPERTIES_RE.exec(name);
      try {
        if (pom) {
          if (entry.uncompressedSize > MAX_POM_PROPERTIES_BYTES) {
            state.gaps.push({
              code: 'PACKAGE_RECORD_TOO_LARGE',
              message: `${entryLocation}: skipped, ${entry.uncompressedSize} bytes is too large`,
            });
            continue;
          }
          const data = await readEntry(zip, entry, state, location);
          if (!data) continue;
          const props = parseProperties(data.toString('utf8'));
          const version = props.get('version');
          if (!version) {
            state.notes.push(`${entryLocation}: no version`);
            continue;
          }
          state.artifacts.push({
            groupId: props.get('groupId') || (pom[1] as string),
            artifactId: props.get('artifactId') || (pom[2] as string),
            version,
            location,
          });
        } else if (ARCHIVE_RE.test(name)) {
          if (depth + 1 > state.limits.maxDepth) {
            state.gaps.push({
              code: 'PACKAGE_DB_TOO_LARGE',
              message: `${entryLocation}: not opened, nested deeper than ${state.limits.maxDepth} archives`,
            });
            continue;
          }
          const data = await readEntry(zip, entry, state, location);
          if (data) await scanArchive(data, entryLocation, depth + 1, state);
        }
      } catch (e) {
        state.gaps.push({
          code: 'PACKAGE_RECORD_INVALID',
          message: `${entryLocation}: unreadable (${errorMessage(e)})`,
        });
      }
    }
  } catch (e) {
    state.gaps.push({
      code: 'PACKAGE_DB_CORRUPT',
      message: `${location}: corrupt zip archive (${errorMessage(e)})`,
    });
  } finally {
    zip.close();
  }
  if (state.artifacts.length === found) state.empty.push(location);
}

/**
 * Every Maven artifact recorded in a Java archive and the archives nested in it. Never throws for
 * bad input: problems (corrupt zip, limits reached) come back as notes.
 */
export async function scanJavaArchive(
  buffer: Buffer,
  location: string,
  limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
): Promise<{ artifacts: MavenArtifact[]; notes: string[]; gaps: JavaArchiveGap[] }> {
  const state: ScanState = {
    limits,
    usedBytes: 0,
    exhausted: false,
    artifacts: [],
    empty: [],
    notes: [],
    gaps: [],
  };
  await scanArchive(buffer, location, 0, state);
  if (state.empty.length > 0) {
    const listed = state.empty.slice(0, LISTED_EMPTY).join(', ');
    const more = state.empty.length > LISTED_EMPTY ? ` and ${state.empty.length - LISTED_EMPTY} more` : '';
    state.notes.push(`no Maven metadata (pom.properties), packages not identified: ${listed}${more}`);
  }
  return { artifacts: state.artifacts, notes: state.notes, gaps: state.gaps };
}

export function mavenPurl(groupId: string, artifactId: string, version: string): string {
  return `pkg:maven/${encodeURIComponent(groupId)}/${encodeURIComponent(artifactId)}@${encodeURIComponent(version)}`;
}

export const javaExtractor: PackageExtractor = {
  id: ID,
  relevant: ({ path }) => ARCHIVE_RE.test(path),
  async extract(ctx: InventoryContext): Promise<Package[]> {
    const packages: Package[] = [];
    for (const { path, stat } of ctx.files) {
      if (!ARCHIVE_RE.test(path)) continue;
      if (stat.type === 'other') reportNotAFile(ctx, ID, path, stat);
      if (stat.type !== 'file') continue;
      const buffer = await readFileOrNote(ctx, ID, path, MAX_ARCHIVE_BYTES);
      if (!buffer) continue;
      const { artifacts, notes, gaps } = await scanJavaArchive(buffer, path);
      notes.forEach((n) => ctx.note(n));
      gaps.forEach((g) => ctx.gap(g.code, ID, path, g.message));
      for (const a of artifacts) {
        packages.push({
          name: `${a.groupId}:${a.artifactId}`,
          version: a.version,
          ecosystem: 'Maven',
          purl: mavenPurl(a.groupId, a.artifactId, a.version),
          location: a.location,
          extractor: ID,
        });
      }
    }
    return dedupePackages(packages);
  },
};
