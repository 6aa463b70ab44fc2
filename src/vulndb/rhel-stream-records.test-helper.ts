/**
 * SYNTHETIC Red Hat OSV records for the RHEL stream tests: the ids (year 2099), versions and
 * CVE numbers are invented. Their shape follows the real records osv.dev serves for Red Hat
 * (as produced by the converter in ossf/osv-schema `tools/redhat`, e.g. its
 * `testdata/OSV/RHSA-2024_6220.json`): `RHSA-YYYY:NNNN` ids, `related` CVEs, one `affected`
 * entry per binary rpm whose ecosystem names product, major release and repository stream
 * (`Red Hat:enterprise_linux:9::appstream`), a `pkg:rpm/redhat/<name>` purl, and one
 * `ECOSYSTEM` range from `0` to an epoch-qualified fix.
 */
import type { OsvRecord } from './osv.js';

/** The ecosystem an RHEL 9 root filesystem's packages get (see src/inventory/os-release.ts). */
export const RHEL9_INVENTORY_ECOSYSTEM = 'Red Hat:enterprise_linux:9::baseos';

/** An installed nodejs on RHEL 9 older than every synthetic fix below. */
export const RHEL9_NODEJS = { name: 'nodejs', version: '1:20.10.0-1.el9' };

export function redHatRecord(
  id: string,
  ecosystem: string,
  names: readonly string[],
  fixed: string,
  modified = '2099-01-02T00:00:00Z',
): OsvRecord {
  return {
    schema_version: '1.6.7',
    id,
    related: [`CVE-2099-${id.slice(-4)}`],
    published: '2099-01-01T00:00:00Z',
    modified,
    summary: `Red Hat Security Advisory: ${names[0] ?? ''} security update`,
    affected: names.map((name) => ({
      package: { name, ecosystem, purl: `pkg:rpm/redhat/${name}` },
      ranges: [{ events: [{ introduced: '0' }, { fixed }], type: 'ECOSYSTEM' }],
    })),
  };
}

/** nodejs ships in AppStream: this one must match a `::baseos`-mapped RHEL 9 inventory. */
export const APPSTREAM_9 = redHatRecord(
  'RHSA-2099:0001',
  'Red Hat:enterprise_linux:9::appstream',
  ['nodejs', 'nodejs-libs', 'npm'],
  '1:20.11.1-1.el9_4',
);
/** The same package in RHEL 8's AppStream: another major release, must not match RHEL 9. */
export const APPSTREAM_8 = redHatRecord(
  'RHSA-2099:0002',
  'Red Hat:enterprise_linux:8::appstream',
  ['nodejs'],
  '1:20.11.1-1.module+el8.9.0+21380+12032667',
);
/** Extended Update Support is a separate product with its own fixes: must not match. */
export const EUS_9_2 = redHatRecord(
  'RHSA-2099:0003',
  'Red Hat:rhel_eus:9.2::appstream',
  ['nodejs'],
  '1:20.11.1-1.el9_2',
);
/** Advanced Update Support, likewise. */
export const AUS_9_2 = redHatRecord(
  'RHSA-2099:0004',
  'Red Hat:rhel_aus:9.2::appstream',
  ['nodejs'],
  '1:20.11.1-1.el9_2',
);
/** A baseos record keeps matching exactly as before. */
export const BASEOS_9 = redHatRecord(
  'RHSA-2099:0005',
  'Red Hat:enterprise_linux:9::baseos',
  ['nodejs'],
  '1:20.10.1-1.el9',
);
/** RHEL 90 would sort right after `9::` if the range were a plain string prefix of `…:9`. */
export const CRB_90 = redHatRecord(
  'RHSA-2099:0006',
  'Red Hat:enterprise_linux:90::crb',
  ['nodejs'],
  '1:99.0.0-1.el90',
);

export const ALL_RHEL_RECORDS: readonly OsvRecord[] = [
  APPSTREAM_9,
  APPSTREAM_8,
  EUS_9_2,
  AUS_9_2,
  BASEOS_9,
  CRB_90,
];
/** The ids a RHEL 9 nodejs lookup (and match) must return, sorted. */
export const RHEL9_NODEJS_IDS = ['RHSA-2099:0001', 'RHSA-2099:0005'];
