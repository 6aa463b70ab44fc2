/**
 * Debian packages: `/var/lib/dpkg/status`, and `/var/lib/dpkg/status.d/*` where distroless images
 * keep one control paragraph per package (their `*.md5sums` siblings are not status files).
 *
 * Which packages count: those whose files are on disk. dpkg's current-state word (third word of
 * `Status:`) `installed`, `unpacked`, `half-configured`, `triggers-awaited` and `triggers-pending`
 * all mean the package's files are present (a vulnerable library is loadable whether or not its
 * postinst ran); `hold`/`deinstall` wants do not change that. `not-installed`, `config-files`
 * (only conffiles left) and `half-installed` (unpacking or removal broke midway, contents
 * unknown) do not count. status.d paragraphs carry no Status field and are installed by
 * construction.
 */
import { dpkgEcosystems } from '../../versions/index.js';
import type { InventoryContext, PackageExtractor } from '../context.js';
import type { OsInfo, Package } from '../types.js';
import { reportNotAFile, streamRecords } from './extractor-support.js';
import { distroQualifier, osPackageEcosystem, packageUrl } from './os-package.js';

const STATUS_FILE = '/var/lib/dpkg/status';
const STATUS_DIR = '/var/lib/dpkg/status.d/';
const PRESENT_STATES = new Set([
  'installed',
  'unpacked',
  'half-configured',
  'triggers-awaited',
  'triggers-pending',
]);

/** RFC 822-style paragraphs: field names lower-cased, continuation lines joined with `\n`. */
export function parseControlParagraphs(text: string): Array<Map<string, string>> {
  const paragraphs: Array<Map<string, string>> = [];
  let current = new Map<string, string>();
  let lastKey: string | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') {
      if (current.size > 0) paragraphs.push(current);
      current = new Map();
      lastKey = undefined;
    } else if (line.startsWith(' ') || line.startsWith('\t')) {
      if (lastKey !== undefined) current.set(lastKey, `${current.get(lastKey) ?? ''}\n${line.slice(1)}`);
    } else if (!line.startsWith('#')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      lastKey = line.slice(0, colon).trim().toLowerCase();
      current.set(lastKey, line.slice(colon + 1).trim());
    }
  }
  if (current.size > 0) paragraphs.push(current);
  return paragraphs;
}

/** Whether a `Status:` value (`want error state`) means the package's files are on disk. */
export function dpkgStatusIsPresent(status: string | undefined): boolean {
  if (status === undefined) return true; // status.d paragraphs
  const state = status.trim().split(/\s+/)[2];
  return state !== undefined && PRESENT_STATES.has(state);
}

/** `foo` or `foo (1.2-3)` → name and version (defaulting to the binary version). */
function parseSource(value: string, binaryVersion: string): { name: string; version: string } | undefined {
  const m = value.match(/^(\S+)(?:\s*\(\s*([^)\s]+)\s*\))?/);
  if (!m?.[1]) return undefined;
  return { name: m[1], version: m[2] ?? binaryVersion };
}

/**
 * The package one status paragraph describes, or undefined when it is not present on disk or has
 * no Package/Version (pure). `os` supplies the purl vendor and distro.
 */
export function dpkgParagraphToPackage(
  p: Map<string, string>,
  location: string,
  ecosystem: string,
  os?: OsInfo,
): Package | undefined {
  const name = p.get('package');
  const version = p.get('version');
  if (!name || !version || !dpkgStatusIsPresent(p.get('status'))) return undefined;
  const pkg: Package = {
    name,
    version,
    ecosystem,
    purl: packageUrl('deb', os?.id ?? 'debian', name, version, {
      arch: p.get('architecture'),
      distro: distroQualifier(os),
    }),
    location,
    extractor: 'dpkg',
  };
  const source = p.get('source');
  const parsed = source ? parseSource(source, version) : undefined;
  if (parsed) pkg.source = parsed;
  return pkg;
}

/** Packages present in one dpkg status text (pure); see `dpkgParagraphToPackage`. */
export function parseDpkgStatus(text: string, location: string, ecosystem: string, os?: OsInfo): Package[] {
  return parseControlParagraphs(text).flatMap(
    (p) => dpkgParagraphToPackage(p, location, ecosystem, os) ?? [],
  );
}

/**
 * Streams one status file paragraph by paragraph (a per-record limit, not a per-file one: a
 * 100 MB status is read to its end). A non-empty file without a single Package paragraph is not
 * a status file: `PACKAGE_DB_CORRUPT`.
 */
async function readStatus(
  ctx: InventoryContext,
  path: string,
  ecosystem: () => string,
  out: Package[],
): Promise<void> {
  let named = 0;
  const read = await streamRecords(
    ctx,
    'dpkg',
    path,
    (text) => {
      for (const p of parseControlParagraphs(text)) {
        if (p.has('package')) named += 1;
        const pkg = dpkgParagraphToPackage(p, path, ecosystem(), ctx.os);
        if (pkg) out.push(pkg);
      }
    },
    (last) => parseControlParagraphs(last).every((p) => p.has('package') && p.has('version')),
  );
  if (read && read.bytes > 0 && named === 0) {
    ctx.gap('PACKAGE_DB_CORRUPT', 'dpkg', path, `${read.bytes} bytes without a single Package paragraph`);
  }
}

/** A package file of `status.d/` (distroless images), not its `.md5sums`. */
function inStatusDir(path: string): boolean {
  const rest = path.startsWith(STATUS_DIR) ? path.slice(STATUS_DIR.length) : undefined;
  return rest !== undefined && rest !== '' && !rest.includes('/') && !rest.endsWith('.md5sums');
}

export const dpkgExtractor: PackageExtractor = {
  id: 'dpkg',
  relevant: (entry) => inStatusDir(entry.path),
  async extract(ctx) {
    const paths = [STATUS_FILE];
    for (const entry of ctx.files) {
      if (!inStatusDir(entry.path)) continue;
      if (entry.stat.type === 'file') paths.push(entry.path);
      else reportNotAFile(ctx, 'dpkg', entry.path, entry.stat);
    }
    let ecosystem: string | undefined;
    const lazyEcosystem = (): string =>
      (ecosystem ??= osPackageEcosystem(ctx, dpkgEcosystems, 'Debian', 'dpkg'));
    const packages: Package[] = [];
    for (const path of paths) await readStatus(ctx, path, lazyEcosystem, packages);
    return packages;
  },
};
