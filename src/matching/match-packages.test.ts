import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Package } from '../inventory/types.js';
import type { OsvRecord, OsvSeverity } from '../vulndb/osv.js';
import {
  ALL_RHEL_RECORDS,
  RHEL9_INVENTORY_ECOSYSTEM,
  RHEL9_NODEJS,
  RHEL9_NODEJS_IDS,
} from '../vulndb/rhel-stream-records.test-helper.js';
import { matchPackages } from './match-packages.js';

function pkg(ecosystem: string, name: string, version: string, extra: Partial<Package> = {}): Package {
  return { ecosystem, name, version, location: `/lib/${name}`, extractor: 'test', ...extra };
}

/** Record affecting `name` in `ecosystem` from `introduced` up to `fixed` (open when absent). */
function rec(
  id: string,
  ecosystem: string,
  name: string,
  opts: {
    aliases?: string[];
    upstream?: string[];
    fixed?: string;
    introduced?: string;
    severity?: OsvSeverity[];
    summary?: string;
    database_specific?: Record<string, unknown>;
  } = {},
): OsvRecord {
  const events: { introduced?: string; fixed?: string }[] = [{ introduced: opts.introduced ?? '0' }];
  if (opts.fixed) events.push({ fixed: opts.fixed });
  return {
    id,
    modified: '2024-01-01T00:00:00Z',
    ...(opts.aliases ? { aliases: opts.aliases } : {}),
    ...(opts.upstream ? { upstream: opts.upstream } : {}),
    ...(opts.severity ? { severity: opts.severity } : {}),
    ...(opts.summary ? { summary: opts.summary } : {}),
    ...(opts.database_specific ? { database_specific: opts.database_specific } : {}),
    affected: [{ package: { ecosystem, name }, ranges: [{ type: 'ECOSYSTEM', events }] }],
    references: [{ type: 'ADVISORY', url: `https://example.test/${id}` }],
  };
}

const CRITICAL_V3 = { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' };
const MEDIUM_V3 = { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N' };

describe('matchPackages: alias grouping', () => {
  const lodash = pkg('npm', 'lodash', '4.17.15');

  it('collapses records linked by aliases into one finding with the CVE as id', () => {
    const findings = matchPackages(
      [lodash],
      [
        rec('GHSA-aaaa', 'npm', 'lodash', {
          aliases: ['CVE-2020-8203'],
          fixed: '4.17.19',
          summary: 'GHSA text',
        }),
        rec('CVE-2020-8203', 'npm', 'lodash', { fixed: '4.17.19', summary: 'CVE text' }),
        rec('GHSA-zzzz', 'npm', 'lodash', { aliases: ['CVE-2021-23337'], fixed: '4.17.21' }),
      ],
    );
    assert.deepEqual(
      findings.map((f) => [f.id, f.aliases]),
      [
        ['CVE-2020-8203', ['GHSA-aaaa']],
        ['CVE-2021-23337', ['GHSA-zzzz']],
      ],
    );
    // The summary comes from the record whose id the finding carries.
    assert.equal(findings[0]?.summary, 'CVE text');
    assert.deepEqual(findings[0]?.references, [
      'https://example.test/CVE-2020-8203',
      'https://example.test/GHSA-aaaa',
    ]);
  });

  it('groups transitively through shared aliases', () => {
    const findings = matchPackages(
      [lodash],
      [
        rec('PYSEC-1', 'npm', 'lodash', { aliases: ['GHSA-bbbb'] }),
        rec('GHSA-bbbb', 'npm', 'lodash', { aliases: ['CVE-2024-1'] }),
        rec('OSV-9', 'npm', 'lodash', { aliases: ['CVE-2024-1'] }),
      ],
    );
    assert.equal(findings.length, 1);
    assert.deepEqual(findings[0]?.aliases, ['GHSA-bbbb', 'OSV-9', 'PYSEC-1']);
    assert.equal(findings[0]?.id, 'CVE-2024-1');
  });

  it('keeps the smallest record id when the group has several CVEs (a DSA fixing many)', () => {
    const vlc = pkg('Debian:12', 'vlc', '1.0-1');
    const findings = matchPackages(
      [vlc],
      [
        rec('DSA-200-1', 'Debian:12', 'vlc', { aliases: ['CVE-2008-2', 'CVE-2008-1'] }),
        rec('DLA-100-1', 'Debian:12', 'vlc', { aliases: ['CVE-2008-1'] }),
      ],
    );
    assert.deepEqual(
      findings.map((f) => [f.id, f.aliases]),
      [['DLA-100-1', ['CVE-2008-1', 'CVE-2008-2', 'DSA-200-1']]],
    );
  });

  it('does not group on upstream: two USNs sharing an upstream CVE stay two findings', () => {
    const curl = pkg('Ubuntu:22.04:LTS', 'curl', '7.81.0-1');
    const findings = matchPackages(
      [curl],
      [
        rec('USN-1-1', 'Ubuntu:22.04:LTS', 'curl', { upstream: ['CVE-2023-1', 'CVE-2023-2'] }),
        rec('USN-2-1', 'Ubuntu:22.04:LTS', 'curl', { upstream: ['CVE-2023-2'] }),
      ],
    );
    assert.deepEqual(
      findings.map((f) => [f.id, f.aliases, f.upstream]),
      [
        ['USN-1-1', [], ['CVE-2023-1', 'CVE-2023-2']],
        ['USN-2-1', [], ['CVE-2023-2']],
      ],
    );
  });

  it('takes the worst severity and the highest fix of the group', () => {
    const findings = matchPackages(
      [lodash],
      [
        rec('GHSA-cccc', 'npm', 'lodash', { aliases: ['CVE-1'], fixed: '4.17.20', severity: [MEDIUM_V3] }),
        rec('CVE-1', 'npm', 'lodash', { fixed: '4.17.16', severity: [CRITICAL_V3] }),
      ],
    );
    assert.equal(findings.length, 1);
    assert.equal(findings[0]?.severity, 'CRITICAL');
    assert.equal(findings[0]?.score, 9.8);
    assert.equal(findings[0]?.severitySource, 'CVSS_V3');
    assert.equal(findings[0]?.fixedVersion, '4.17.20');
  });

  it('reports no fix when one record of the group has none', () => {
    const findings = matchPackages(
      [lodash],
      [
        rec('GHSA-dddd', 'npm', 'lodash', { aliases: ['CVE-2'], fixed: '4.17.20' }),
        rec('CVE-2', 'npm', 'lodash'),
      ],
    );
    assert.equal(findings.length, 1);
    assert.equal(findings[0]?.fixedVersion, undefined);
  });
});

describe('matchPackages: packages', () => {
  it('matches binaries through their source package and reports them on the binary', () => {
    const source = { name: 'openssl', version: '3.0.11-1~deb12u2' };
    const packages = [
      pkg('Debian:12', 'libssl3', '3.0.11-1~deb12u2', { source }),
      pkg('Debian:12', 'openssl', '3.0.11-1~deb12u2', { source }),
      pkg('Debian:12', 'zlib1g', '1:1.2.13.dfsg-1', { source: { name: 'zlib', version: '1:1.2.13.dfsg-1' } }),
    ];
    const records = [
      rec('DSA-5000-1', 'Debian:12', 'openssl', { fixed: '3.0.13-1~deb12u1' }),
      rec('DSA-4000-1', 'Debian:11', 'openssl', { fixed: '1.1.1w-0+deb11u1' }),
    ];
    const findings = matchPackages(packages, records);
    assert.deepEqual(
      findings.map((f) => [f.package.name, f.package.source?.name, f.id, f.fixedVersion]),
      [
        ['libssl3', 'openssl', 'DSA-5000-1', '3.0.13-1~deb12u1'],
        ['openssl', 'openssl', 'DSA-5000-1', '3.0.13-1~deb12u1'],
      ],
    );
    assert.equal(findings[0]?.package.location, '/lib/libssl3');
  });

  it('gives the same findings from a lookup function as from a record list', () => {
    const records = [
      rec('GHSA-eeee', 'PyPI', 'Jinja2', { fixed: '3.1.3' }),
      rec('GHSA-ffff', 'npm', 'jinja2'),
    ];
    const packages = [pkg('PyPI', 'jinja2', '3.1.2'), pkg('npm', 'other', '1.0.0')];
    const fromList = matchPackages(packages, records);
    assert.deepEqual(
      fromList.map((f) => f.id),
      ['GHSA-eeee'],
    );
    const asked: string[] = [];
    const fromLookup = matchPackages(packages, (p) => {
      asked.push(p.name);
      return p.ecosystem === 'PyPI' ? records : [];
    });
    assert.deepEqual(fromLookup, fromList);
    assert.deepEqual(asked, ['jinja2', 'other']);
  });

  it('sorts each package worst first and evaluates a record returned twice once', () => {
    const p = pkg('npm', 'x', '1.0.0');
    const low = rec('GHSA-0001', 'npm', 'x', { database_specific: { severity: 'LOW' } });
    const critical = rec('GHSA-0002', 'npm', 'x', { severity: [CRITICAL_V3] });
    const findings = matchPackages([p], () => [low, critical, low]);
    assert.deepEqual(
      findings.map((f) => [f.id, f.severity]),
      [
        ['GHSA-0002', 'CRITICAL'],
        ['GHSA-0001', 'LOW'],
      ],
    );
  });

  it('warns once about records it cannot evaluate and still matches the rest', () => {
    const packages = [
      pkg('NoSuchEcosystem', 'a', '1'),
      pkg('NoSuchEcosystem', 'a', '2'),
      pkg('npm', 'b', '1.0.0'),
    ];
    const warnings: string[] = [];
    const findings = matchPackages(
      packages,
      [rec('X-1', 'NoSuchEcosystem', 'a', { fixed: '3' }), rec('GHSA-gggg', 'npm', 'b')],
      { onWarning: (m) => warnings.push(m) },
    );
    assert.deepEqual(
      findings.map((f) => f.id),
      ['GHSA-gggg'],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /NoSuchEcosystem.*X-1/);
  });
});

describe('matchPackages: RHEL repository streams', () => {
  it('reports AppStream advisories on a baseos-mapped RHEL 9 package, not RHEL 8, EUS or AUS ones', () => {
    // The source rpm names the package, as the rpm extractor records it.
    const nodejs = pkg(RHEL9_INVENTORY_ECOSYSTEM, 'nodejs', RHEL9_NODEJS.version, {
      source: { name: 'nodejs', version: RHEL9_NODEJS.version },
    });
    const findings = matchPackages([nodejs], ALL_RHEL_RECORDS);
    assert.deepEqual(findings.map((f) => f.id).sort(), RHEL9_NODEJS_IDS);
    // The AppStream fix is the later one, reported on the package as inventoried.
    const appstream = findings.find((f) => f.id === 'RHSA-2099:0001');
    assert.equal(appstream?.fixedVersion, '1:20.11.1-1.el9_4');
    assert.equal(appstream?.package.ecosystem, RHEL9_INVENTORY_ECOSYSTEM);
  });
});
