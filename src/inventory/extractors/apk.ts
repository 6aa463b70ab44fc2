/**
 * Alpine-family packages (Alpine, Wolfi, Chainguard …): `/lib/apk/db/installed`, also found at
 * `/usr/lib/apk/db/installed` on newer releases (one of them is usually a link to the other;
 * each database is read once). Paragraphs of `X:value` lines: `P` name, `V` version, `A` arch,
 * `o` origin — the source package advisories name.
 */
import { apkEcosystems } from '../../versions/index.js';
import { isContainmentError } from '../../errors.js';
import type { PackageExtractor } from '../context.js';
import type { OsInfo, Package } from '../types.js';
import { distroQualifier, osPackageEcosystem, packageUrl } from './os-package.js';

const DATABASES = ['/lib/apk/db/installed', '/usr/lib/apk/db/installed'];

/** Packages of one apk `installed` database text (pure). Entries without P or V are skipped. */
export function parseApkInstalled(text: string, location: string, ecosystem: string, os?: OsInfo): Package[] {
  const packages: Package[] = [];
  let fields = new Map<string, string>();
  const flush = (): void => {
    const name = fields.get('P');
    const version = fields.get('V');
    if (name && version) {
      const pkg: Package = {
        name,
        version,
        ecosystem,
        purl: packageUrl('apk', os?.id ?? 'alpine', name.toLowerCase(), version, {
          arch: fields.get('A'),
          distro: distroQualifier(os),
        }),
        location,
        extractor: 'apk',
      };
      const origin = fields.get('o');
      if (origin) pkg.source = { name: origin, version };
      packages.push(pkg);
    }
    fields = new Map();
  };
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '') {
      flush();
      continue;
    }
    // Only the first occurrence matters for the single-valued keys we read (F:/R: repeat).
    if (line[1] === ':' && !fields.has(line[0] as string)) fields.set(line[0] as string, line.slice(2));
  }
  flush();
  return packages;
}

export const apkExtractor: PackageExtractor = {
  id: 'apk',
  async extract(ctx) {
    const seen = new Set<string>();
    const found: Array<[string, string]> = [];
    for (const path of DATABASES) {
      const canonical = await ctx.fs.resolve(path);
      if (canonical === undefined || seen.has(canonical)) continue;
      seen.add(canonical);
      try {
        const text = await ctx.fs.readText(path);
        if (text !== undefined) found.push([path, text]);
      } catch (e) {
        if (!isContainmentError(e)) throw e;
        ctx.note(`apk: ${path} skipped: ${e.message}`);
      }
    }
    if (found.length === 0) return [];
    const ecosystem = osPackageEcosystem(ctx, apkEcosystems, 'Alpine', 'apk');
    return found.flatMap(([path, text]) => parseApkInstalled(text, path, ecosystem, ctx.os));
  },
};
