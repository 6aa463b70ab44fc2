/**
 * What the distribution package extractors (dpkg, apk, rpm) share: the ecosystem their packages
 * get from the detected OS, and package URLs for them.
 */
import type { InventoryContext } from '../context.js';
import type { OsInfo } from '../types.js';

/**
 * The detected OS's ecosystem when its family (`Debian` of `Debian:12`) is one this package format
 * serves; otherwise `fallback`, with a note (an unknown distribution, Debian sid, or a stray
 * database of another format). Packages are never dropped for want of an ecosystem.
 */
export function osPackageEcosystem(
  ctx: Pick<InventoryContext, 'os' | 'note'>,
  families: readonly string[],
  fallback: string,
  what: string,
): string {
  const ecosystem = ctx.os?.ecosystem;
  if (ecosystem !== undefined && families.includes(ecosystem.split(':')[0] as string)) return ecosystem;
  const os = ctx.os ? (ctx.os.prettyName ?? ctx.os.id) : 'an unidentified distribution';
  ctx.note(
    `${what}: no OSV ecosystem is known for this format on ${os}; recorded under "${fallback}" ` +
      '(advisories scoped to a release will not match)',
  );
  return fallback;
}

/** `distro=<id>-<version>` as syft and trivy write it, when both are known. */
export function distroQualifier(os: OsInfo | undefined): string | undefined {
  return os?.versionId ? `${os.id}-${os.versionId}` : undefined;
}

/**
 * A purl (package-url spec): components percent-encoded, `:` kept literal as the reference
 * implementations do (epochs stay readable), qualifiers sorted by key, empty ones dropped.
 */
export function packageUrl(
  type: string,
  namespace: string,
  name: string,
  version: string,
  qualifiers: Record<string, string | undefined>,
): string {
  const enc = (s: string): string => encodeURIComponent(s).replace(/%3A/gi, ':');
  const query = Object.keys(qualifiers)
    .filter((k) => qualifiers[k])
    .sort()
    .map((k) => `${k}=${enc(qualifiers[k] as string)}`)
    .join('&');
  const base = `pkg:${type}/${enc(namespace.toLowerCase())}/${enc(name)}@${enc(version)}`;
  return query ? `${base}?${query}` : base;
}
