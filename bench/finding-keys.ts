/** How findings are compared between our scanner and osv-scanner: by package and record id. */
import type { ScanResult } from '../src/scan/scan-result.js';

/** `<binary package>@<version>|<record id>` for one record behind a Debian finding. */
export type FindingKey = string;

/** Generated record ids all end in `-R<n>` (see prepare-data.ts): those are the ids to compare. */
const RECORD_ID = /-R\d+$/;

/** Keys of our Debian findings (every record id of each alias group), and how many others. */
export function ourFindingKeys(result: Pick<ScanResult, 'vulnerabilities'>): {
  debian: FindingKey[];
  other: number;
} {
  const debian = new Set<FindingKey>();
  let other = 0;
  for (const v of result.vulnerabilities) {
    if (!v.package.ecosystem.startsWith('Debian')) {
      other++;
      continue;
    }
    for (const id of [v.id, ...v.aliases]) {
      if (RECORD_ID.test(id)) debian.add(`${v.package.name}@${v.package.version}|${id}`);
    }
  }
  return { debian: [...debian].sort(), other };
}

interface OsvScannerOutput {
  results?: {
    packages?: {
      package: { name: string; version: string; ecosystem: string; os_package_name?: string };
      vulnerabilities?: { id: string }[];
    }[];
  }[];
}

/**
 * Keys of osv-scanner's Debian findings (it names the binary package in `os_package_name`), and
 * how many others (an image scan also reads Python, Go and Java metadata).
 */
export function osvScannerFindingKeys(output: OsvScannerOutput): { debian: FindingKey[]; other: number } {
  const keys = new Set<FindingKey>();
  let other = 0;
  for (const result of output.results ?? []) {
    for (const p of result.packages ?? []) {
      const name = p.package.os_package_name ?? p.package.name;
      for (const v of p.vulnerabilities ?? []) {
        if (p.package.ecosystem.startsWith('Debian')) keys.add(`${name}@${p.package.version}|${v.id}`);
        else other++;
      }
    }
  }
  return { debian: [...keys].sort(), other };
}
