/**
 * Alpine-family packages (Alpine, Wolfi, Chainguard …): `/lib/apk/db/installed`, also found at
 * `/usr/lib/apk/db/installed` on newer releases (one of them is usually a link to the other;
 * each database is read once). Paragraphs of `X:value` lines: `P` name, `V` version, `A` arch,
 * `o` origin — the source package advisories name.
 */
import { apkEcosystems } from '../../versions/index.js';
import type { PackageExtractor } from '../context.js';
import type { OsInfo, Package } from '../types.js';
import { streamRecords } from './extractor-support.js';
import { distroQualifier, osPackageEcosystem, packageUrl } from './os-package.js';

const DATABASES = ['/lib/apk/db/installed', '/usr/lib/apk/db/installed'];

/** The package of one apk record's fields (`P`, `V`, `A`, `o` …), or undefined without P or V (pure). */
export function apkFieldsToPackage(
  fields: ReadonlyMap<string, string>,
  location: string,
  ecosystem: string,
  os?: OsInfo,
): Package | undefined {
  const name = fields.get('P');
  const version = fields.get('V');
  if (!name || !version) return undefined;
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
  return pkg;
}

/** `X:value` lines of one record; only the first occurrence of a key counts (F:/R: repeat). */
export function apkRecordFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line[1] === ':' && !fields.has(line[0] as string)) fields.set(line[0] as string, line.slice(2));
  }
  return fields;
}

/** Packages of one apk `installed` database text (pure). Entries without P or V are skipped. */
export function parseApkInstalled(text: string, location: string, ecosystem: string, os?: OsInfo): Package[] {
  return text
    .split(/\r?\n[ \t]*\r?\n/)
    .flatMap((record) => apkFieldsToPackage(apkRecordFields(record), location, ecosystem, os) ?? []);
}

export const apkExtractor: PackageExtractor = {
  id: 'apk',
  async extract(ctx) {
    const seen = new Set<string>();
    let ecosystem: string | undefined;
    const lazyEcosystem = (): string =>
      (ecosystem ??= osPackageEcosystem(ctx, apkEcosystems, 'Alpine', 'apk'));
    const packages: Package[] = [];
    for (const path of DATABASES) {
      const canonical = (await ctx.fs.resolve(path)) ?? path;
      if (seen.has(canonical)) continue;
      seen.add(canonical);
      let named = 0;
      const read = await streamRecords(
        ctx,
        'apk',
        path,
        (text) => {
          const fields = apkRecordFields(text);
          if (fields.has('P')) named += 1;
          const pkg = apkFieldsToPackage(fields, path, lazyEcosystem(), ctx.os);
          if (pkg) packages.push(pkg);
        },
        (last) => {
          const fields = apkRecordFields(last);
          return fields.has('P') && fields.has('V');
        },
      );
      if (read && read.bytes > 0 && named === 0) {
        ctx.gap('PACKAGE_DB_CORRUPT', 'apk', path, `${read.bytes} bytes without a single P: record`);
      }
    }
    return packages;
  },
};
