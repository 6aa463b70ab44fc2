import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContainmentError } from '../errors.js';
import { SEVERITIES } from '../inventory/types.js';
import type { InsecureConfiguration, Package } from '../inventory/types.js';
import { summarize } from '../matching/summary.js';
import type { VulnerabilityFinding } from '../matching/types.js';
import type { ScanResult } from '../scan/scan-result.js';
import { uuidV5 } from './cyclonedx.js';
import { renderReport } from './index.js';
import type { ReportFormat } from './index.js';

// ---------------------------------------------------------------------------------------------
// A realistic Debian 12 image with an npm app and a Python package.

const deb = (name: string, version: string, source?: string): Package => ({
  name,
  version,
  ecosystem: 'Debian:12',
  ...(source ? { source: { name: source, version } } : {}),
  purl: `pkg:deb/debian/${name}@${encodeURIComponent(version)}?arch=amd64&distro=debian-12`,
  location: '/var/lib/dpkg/status',
  extractor: 'dpkg',
});

const PACKAGES: Package[] = [
  deb('libssl3', '3.0.11-1~deb12u1', 'openssl'),
  deb('openssl', '3.0.11-1~deb12u1', 'openssl'),
  deb('libc6', '2.36-9+deb12u1', 'glibc'),
  deb('libcurl4', '7.88.1-10+deb12u1', 'curl'),
  deb('tar', '1.34+dfsg-1.2'),
  deb('apt', '2.6.1'),
  {
    name: 'lodash',
    version: '4.17.20',
    ecosystem: 'npm',
    purl: 'pkg:npm/lodash@4.17.20',
    location: '/app/node_modules/lodash/package.json',
    extractor: 'npm',
  },
  // The same package installed twice: one purl, two places.
  {
    name: 'lodash',
    version: '4.17.20',
    ecosystem: 'npm',
    purl: 'pkg:npm/lodash@4.17.20',
    location: '/app/node_modules/express-extra/node_modules/lodash/package.json',
    extractor: 'npm',
  },
  {
    name: 'requests',
    version: '2.25.0',
    ecosystem: 'PyPI',
    purl: 'pkg:pypi/requests@2.25.0',
    location: '/usr/lib/python3/dist-packages/requests-2.25.0.dist-info/METADATA',
    extractor: 'python',
  },
];

function pkg(name: string, location?: string): VulnerabilityFinding['package'] {
  const p = PACKAGES.find((x) => x.name === name && (location === undefined || x.location === location));
  assert.ok(p, name);
  const { extractor: _extractor, ...rest } = p;
  return rest;
}

const LODASH_1 = '/app/node_modules/lodash/package.json';
const LODASH_2 = '/app/node_modules/express-extra/node_modules/lodash/package.json';

const VULNERABILITIES: VulnerabilityFinding[] = [
  {
    id: 'CVE-2024-0727',
    aliases: ['DLA-3786-1', 'DSA-5678-1', 'GHSA-9v9h-cgj8-h64p', 'USN-6622-1'],
    summary: 'PKCS12 Decoding crashes',
    package: pkg('libssl3'),
    fixedVersion: '3.0.13-1~deb12u1',
    severity: 'MEDIUM',
    score: 5.5,
    severitySource: 'CVSS_V3',
    references: ['https://www.openssl.org/news/secadv/20240125.txt'],
  },
  {
    id: 'CVE-2024-0727',
    aliases: ['DLA-3786-1', 'DSA-5678-1', 'GHSA-9v9h-cgj8-h64p', 'USN-6622-1'],
    summary: 'PKCS12 Decoding crashes',
    package: pkg('openssl'),
    fixedVersion: '3.0.13-1~deb12u1',
    severity: 'MEDIUM',
    score: 5.5,
    severitySource: 'CVSS_V3',
  },
  {
    id: 'CVE-2023-4911',
    aliases: ['DSA-5514-1'],
    summary: 'Looney Tunables: buffer overflow in ld.so GLIBC_TUNABLES',
    package: pkg('libc6'),
    fixedVersion: '2.36-9+deb12u3',
    severity: 'HIGH',
    score: 7.8,
    severitySource: 'CVSS_V3',
  },
  {
    id: 'CVE-2023-38545',
    aliases: ['DSA-5523-1'],
    summary: 'SOCKS5 heap buffer overflow',
    package: pkg('libcurl4'),
    fixedVersion: '7.88.1-10+deb12u4',
    severity: 'CRITICAL',
    score: 9.8,
    severitySource: 'CVSS_V3',
  },
  {
    id: 'GHSA-35jh-r3h4-6jhm',
    aliases: ['CVE-2021-23337'],
    summary: 'Command Injection in lodash',
    package: pkg('lodash', LODASH_1),
    fixedVersion: '4.17.21',
    severity: 'HIGH',
    score: 7.2,
    severitySource: 'CVSS_V3',
  },
  {
    id: 'GHSA-35jh-r3h4-6jhm',
    aliases: ['CVE-2021-23337'],
    summary: 'Command Injection in lodash',
    package: pkg('lodash', LODASH_2),
    fixedVersion: '4.17.21',
    severity: 'HIGH',
    score: 7.2,
    severitySource: 'CVSS_V3',
  },
  {
    id: 'CVE-2005-2541',
    aliases: [],
    summary: 'tar does not warn about setuid files',
    package: pkg('tar'),
    severity: 'LOW',
    severitySource: 'Debian',
  },
  { id: 'CVE-2011-3374', aliases: [], package: pkg('apt'), severity: 'UNKNOWN' },
  {
    id: 'GHSA-j8r2-6x86-q33q',
    aliases: ['CVE-2023-32681', 'PYSEC-2023-74'],
    summary: 'Unintended leak of Proxy-Authorization header in requests',
    package: pkg('requests'),
    fixedVersion: '2.31.0',
    severity: 'MEDIUM',
    score: 6.1,
    severitySource: 'CVSS_V3',
  },
];

const CONFIGURATIONS: InsecureConfiguration[] = [
  {
    id: 'root_user',
    severity: 'MEDIUM',
    title: 'Container runs as root',
    evidence: ['config.User'],
  },
  {
    id: 'remote_shell_installed',
    severity: 'HIGH',
    title: 'A remote shell server is installed',
    evidence: ['/usr/sbin/sshd', '/etc/ssh/sshd_config'],
    details: 'sshd gives a network login into the container',
  },
];

function fixture(overrides: Partial<ScanResult> = {}): ScanResult {
  const vulnerabilities = overrides.vulnerabilities ?? VULNERABILITIES;
  const insecureConfigurations = overrides.insecureConfigurations ?? CONFIGURATIONS;
  return {
    schemaVersion: 1,
    target: { kind: 'image-archive', ref: '/tmp/shop.tar', image: 'localhost/shop:1.4' },
    scanTime: '2026-03-01T10:00:00.000Z',
    os: {
      id: 'debian',
      versionId: '12',
      versionCodename: 'bookworm',
      prettyName: 'Debian GNU/Linux 12 (bookworm)',
      ecosystem: 'Debian:12',
    },
    ecosystem: 'Debian:12',
    packages: PACKAGES,
    vulnerabilities,
    insecureConfigurations,
    ignored: [
      {
        id: 'GHSA-9wx4-h78v-vm56',
        reason: 'requests is only used against our own API',
        expires: '2026-06-30',
        kind: 'vulnerability',
        package: { name: 'requests', version: '2.25.0' },
      },
      {
        id: 'world_writable_path',
        reason: '/tmp is meant to be world-writable',
        expires: '2026-12-31',
        kind: 'configuration',
      },
    ],
    summary: summarize(vulnerabilities, insecureConfigurations),
    notes: ['ignore entry CVE-2020-1971 expired on 2026-01-31; it applies no more'],
    completeness: 'complete',
    gaps: [],
    ...overrides,
  };
}

// ESC and CSI introducers: the only way ANSI styling can get into text.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
// eslint-disable-next-line no-control-regex
const ANY_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

// ---------------------------------------------------------------------------------------------

describe('table format', () => {
  const text = renderReport(fixture(), 'table');
  const lines = text.split('\n');

  /** Rows of the table that follows the line starting with `title`, split on 2+ spaces. */
  function tableRows(title: string): { header: string; rows: string[] } {
    const start = lines.findIndex((l) => l.startsWith(title));
    assert.ok(start >= 0, `section ${title}`);
    const header = lines[start + 1] ?? '';
    assert.match(lines[start + 2] ?? '', /^─+/);
    const end = lines.indexOf('', start);
    return { header, rows: lines.slice(start + 3, end) };
  }

  /** The cell under `column` in `row`, using the header's column offsets. */
  function cell(header: string, row: string, column: string): string {
    const starts = [...header.matchAll(/\S+/g)].map((m) => m.index);
    const i = header.split(/\s{2,}/).indexOf(column);
    assert.ok(i >= 0, `column ${column}`);
    return row.slice(starts[i], starts[i + 1]).trim();
  }

  it('starts with target, OS, ecosystem and package count', () => {
    const head = lines[0] ?? '';
    assert.match(head, /Target: \/tmp\/shop\.tar \(image-archive, image localhost\/shop:1\.4\)/);
    assert.match(head, /OS: Debian GNU\/Linux 12 \(bookworm\) \[Debian:12\]/);
    assert.match(head, new RegExp(`Packages: ${PACKAGES.length}\\b`));
  });

  it('lists every vulnerability, worst first, then by package and id', () => {
    const { header, rows } = tableRows('Vulnerabilities (');
    assert.deepEqual(header.split(/\s{2,}/), [
      'SEVERITY',
      'ID',
      'PACKAGE',
      'INSTALLED',
      'FIXED',
      'SOURCE',
      'ALIASES',
    ]);
    assert.equal(rows.length, VULNERABILITIES.length);
    const seen = rows.map((r) => ({
      severity: cell(header, r, 'SEVERITY'),
      id: cell(header, r, 'ID'),
      pkg: cell(header, r, 'PACKAGE'),
    }));
    assert.deepEqual(
      seen.map((s) => s.severity),
      ['CRITICAL', 'HIGH', 'HIGH', 'HIGH', 'MEDIUM', 'MEDIUM', 'MEDIUM', 'LOW', 'UNKNOWN'],
    );
    // Within HIGH: libc6 < lodash by package name; within MEDIUM: libssl3 < openssl < requests.
    assert.deepEqual(
      seen.slice(1, 7).map((s) => s.pkg),
      ['libc6', 'lodash', 'lodash', 'libssl3', 'openssl', 'requests'],
    );
    assert.equal(seen[0]?.id, 'CVE-2023-38545');
  });

  it('shows installed and fixed versions, the source package only when it differs, and short aliases', () => {
    const { header, rows } = tableRows('Vulnerabilities (');
    const row = (pkgName: string): string => {
      const r = rows.find((x) => cell(header, x, 'PACKAGE') === pkgName);
      assert.ok(r, pkgName);
      return r;
    };
    assert.equal(cell(header, row('libssl3'), 'INSTALLED'), '3.0.11-1~deb12u1');
    assert.equal(cell(header, row('libssl3'), 'FIXED'), '3.0.13-1~deb12u1');
    assert.equal(cell(header, row('libssl3'), 'SOURCE'), 'openssl');
    assert.equal(cell(header, row('openssl'), 'SOURCE'), '', 'same name as the source: not repeated');
    assert.equal(cell(header, row('apt'), 'FIXED'), '-');
    // Four aliases: two shown, the rest counted.
    assert.equal(cell(header, row('libssl3'), 'ALIASES'), 'DLA-3786-1, DSA-5678-1 +2');
    assert.equal(cell(header, row('libc6'), 'ALIASES'), 'DSA-5514-1');
  });

  it('drops the SOURCE column when no package has a different source', () => {
    const only = VULNERABILITIES.filter((v) => v.package.name === 'lodash');
    const t = renderReport(fixture({ vulnerabilities: only }), 'table');
    assert.doesNotMatch(t, /SOURCE/);
    assert.match(t, /SEVERITY\s+ID\s+PACKAGE\s+INSTALLED\s+FIXED\s+ALIASES/);
  });

  it('lists insecure configurations with severity, id and evidence', () => {
    const { header, rows } = tableRows('Insecure configurations (');
    assert.deepEqual(header.split(/\s{2,}/), ['SEVERITY', 'ID', 'TITLE', 'EVIDENCE']);
    assert.deepEqual(
      rows.map((r) => cell(header, r, 'ID')),
      ['remote_shell_installed', 'root_user'],
    );
    assert.equal(cell(header, rows[0] ?? '', 'EVIDENCE'), '/usr/sbin/sshd, /etc/ssh/sshd_config');
  });

  it('ends with counts, risk score, the compliance verdict with violated thresholds, ignored and notes', () => {
    const { summary } = fixture();
    assert.equal(summary.compliance.passed, false, 'fixture has a CRITICAL finding: fails the default');
    const vulnLine = lines.find((l) => l.trim().startsWith('Vulnerabilities:'));
    assert.equal(
      vulnLine?.trim(),
      `Vulnerabilities: ${VULNERABILITIES.length} (${SEVERITIES.map((s) => `${s} ${summary.counts[s]}`).join(', ')})`,
    );
    assert.ok(lines.some((l) => l.trim() === `Risk score: ${summary.riskScore}/100`));
    const compliance = lines.find((l) => l.trim().startsWith('Compliance:')) ?? '';
    assert.match(
      compliance,
      /Compliance: FAILED \(thresholds CRITICAL ≤ 0, HIGH ≤ 5, MEDIUM ≤ 20, LOW ≤ 50\)/,
    );
    for (const violation of summary.compliance.violations) {
      assert.ok(lines.includes(`    - ${violation}`), violation);
    }
    assert.match(text, /Ignored: 2 finding\(s\)/);
    assert.ok(lines.includes('  - ignore entry CVE-2020-1971 expired on 2026-01-31; it applies no more'));
  });

  it('says PASSED, no findings and unlimited thresholds on a clean scan', () => {
    const clean = fixture({ vulnerabilities: [], insecureConfigurations: [], ignored: [], notes: [] });
    clean.summary = summarize([], [], { LOW: Infinity });
    const t = renderReport(clean, 'table');
    assert.match(t, /No vulnerabilities found\./);
    assert.match(t, /No insecure configurations found\./);
    assert.match(t, /Compliance: PASSED \(thresholds CRITICAL ≤ 0, HIGH ≤ 5, MEDIUM ≤ 20, LOW unlimited\)/);
    assert.doesNotMatch(t, /Ignored:|Notes/);
  });

  it('has no ANSI escapes without color, and the same text once colors are stripped', () => {
    assert.doesNotMatch(text, ANSI);
    assert.ok(!text.includes('\u001b'));
    const colored = renderReport(fixture(), 'table', { color: true });
    assert.ok(colored.includes('\u001b[1;31mCRITICAL'), 'CRITICAL in bold red');
    assert.ok(colored.includes('\u001b[1;31mFAILED\u001b[0m'), 'FAILED in bold red');
    assert.equal(colored.replace(ANSI, ''), text);
  });

  it('truncates long cells with an ellipsis and keeps ids whole', () => {
    const longVersion = `1:${'9'.repeat(70)}`;
    const longId = `OSV-2026-${'7'.repeat(40)}`;
    const finding: VulnerabilityFinding = {
      ...(VULNERABILITIES[0] as VulnerabilityFinding),
      id: longId,
      package: { ...pkg('tar'), version: longVersion },
    };
    const t = renderReport(fixture({ vulnerabilities: [finding] }), 'table');
    assert.ok(t.includes(longId), 'ids are never cut: users copy them');
    assert.ok(!t.includes(longVersion));
    const cut = /1:9+…/.exec(t)?.[0];
    assert.ok(cut, 'truncated version ends in an ellipsis');
    assert.equal([...cut].length, 28);
  });

  it('neutralises terminal escapes and line breaks smuggled in through package data', () => {
    const evil: VulnerabilityFinding = {
      ...(VULNERABILITIES[2] as VulnerabilityFinding),
      package: { ...pkg('libc6'), name: 'lib\u001b[2J\u001b[31mevil\nFAKE ROW', version: '1\r\u202e2' },
    };
    const config: InsecureConfiguration = {
      id: 'setuid_file',
      severity: 'LOW',
      title: 'setuid\u0007 file',
      evidence: ['/bin/\u001b]0;pwned\u0007x'],
    };
    const result = fixture({ vulnerabilities: [evil], insecureConfigurations: [config] });
    result.os = { id: 'debian', prettyName: 'Debian\u001b[2K' };
    result.notes = ['note with \u001b[1m bold'];
    for (const color of [false, true]) {
      const t = renderReport(result, 'table', { color }).replace(ANSI, (m) =>
        // Our own colour codes are the only escapes allowed, and only with colour on.
        color ? '' : m,
      );
      assert.doesNotMatch(t, ANY_CONTROL);
      assert.ok(!t.includes('\u202e'), 'bidi override removed');
      assert.ok(!/^FAKE ROW/m.test(t), 'an embedded newline cannot start a row');
    }
    const plain = renderReport(result, 'table');
    // Shown escaped (then cut to the column width), so the user sees something odd is there.
    assert.match(plain, /lib\\u\{1b\}\[2J\\u\{1b\}\[31mevil\\u\{a\}…/);
    assert.match(plain, /OS: Debian\\u\{1b\}\[2K/);
  });
});

describe('json format', () => {
  it('is the ScanResult itself', () => {
    const result = fixture();
    assert.deepEqual(JSON.parse(renderReport(result, 'json')), result);
  });

  it('orders keys as the types declare them, whatever order the producer used', () => {
    const reverseKeys = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverseKeys)
        : v && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reverseKeys(x)]),
            )
          : v;
    const result = fixture();
    const scrambled = reverseKeys(result) as ScanResult;
    assert.notDeepEqual(Object.keys(scrambled), Object.keys(result));
    const text = renderReport(scrambled, 'json');
    assert.equal(text, renderReport(result, 'json'));
    const parsed = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), [
      'schemaVersion',
      'target',
      'scanTime',
      'os',
      'ecosystem',
      'packages',
      'vulnerabilities',
      'insecureConfigurations',
      'ignored',
      'summary',
      'notes',
      'completeness',
      'gaps',
    ]);
    const finding = (parsed.vulnerabilities as Record<string, unknown>[])[0] ?? {};
    assert.deepEqual(Object.keys(finding).slice(0, 5), [
      'id',
      'aliases',
      'summary',
      'package',
      'fixedVersion',
    ]);
    const counts = (parsed.summary as { counts: object }).counts;
    assert.deepEqual(Object.keys(counts), [...SEVERITIES]);
  });

  it('keeps fields it does not know yet, after the known ones', () => {
    const result = { extra: 'added-later', ...fixture() } as ScanResult & { extra: string };
    const parsed = JSON.parse(renderReport(result, 'json')) as Record<string, unknown>;
    assert.equal(parsed.extra, 'added-later');
    assert.equal(Object.keys(parsed).at(-1), 'extra');
  });
});

interface SarifRule {
  id: string;
  shortDescription: { text: string };
  helpUri?: string;
  defaultConfiguration: { level: string };
  properties: { 'security-severity'?: string; tags: string[] };
}
interface SarifResult {
  ruleId: string;
  ruleIndex: number;
  level: string;
  message: { text: string };
  locations?: { physicalLocation: { artifactLocation: { uri: string } } }[];
  partialFingerprints: Record<string, string>;
}
interface SarifLog {
  $schema: string;
  version: string;
  runs: {
    tool: { driver: { name: string; version?: string; informationUri: string; rules: SarifRule[] } };
    results: SarifResult[];
  }[];
}

describe('sarif format', () => {
  const log = JSON.parse(renderReport(fixture(), 'sarif', { toolVersion: '0.1.0' })) as SarifLog;
  const run = log.runs[0];
  assert.ok(run);
  const { rules } = run.tool.driver;

  it('is a SARIF 2.1.0 log with one run by containment', () => {
    assert.equal(log.$schema, 'https://json.schemastore.org/sarif-2.1.0.json');
    assert.equal(log.version, '2.1.0');
    assert.equal(log.runs.length, 1);
    assert.equal(run.tool.driver.name, 'containment');
    assert.equal(run.tool.driver.version, '0.1.0');
    assert.match(run.tool.driver.informationUri, /^https:\/\//);
  });

  it('has one rule per distinct vulnerability and configuration id', () => {
    const expected = new Set([...VULNERABILITIES.map((v) => v.id), ...CONFIGURATIONS.map((c) => c.id)]);
    assert.equal(rules.length, expected.size);
    assert.deepEqual(new Set(rules.map((r) => r.id)), expected);
    for (const rule of rules) {
      assert.ok(rule.shortDescription.text.length > 0);
      assert.ok(
        rule.properties.tags.includes('security'),
        'GitHub shows security-severity only with this tag',
      );
    }
    assert.equal(
      rules.find((r) => r.id === 'CVE-2023-4911')?.helpUri,
      'https://osv.dev/vulnerability/CVE-2023-4911',
    );
  });

  it('gives rules a numeric security-severity: the CVSS score, or the band of a named rating', () => {
    const byId = new Map(rules.map((r) => [r.id, r]));
    for (const v of VULNERABILITIES) {
      const value = byId.get(v.id)?.properties['security-severity'];
      if (v.severity === 'UNKNOWN') {
        assert.equal(value, undefined, 'no made-up score for an unrated advisory');
        continue;
      }
      assert.match(value ?? '', /^\d+\.\d$/);
      const score = Number(value);
      if (v.score !== undefined) assert.equal(score, v.score);
      // GitHub's bands: >= 9 critical, 7–8.9 high, 4–6.9 medium, 0.1–3.9 low.
      const band = score >= 9 ? 'CRITICAL' : score >= 7 ? 'HIGH' : score >= 4 ? 'MEDIUM' : 'LOW';
      assert.equal(band, v.severity, v.id);
    }
    assert.equal(byId.get('remote_shell_installed')?.properties['security-severity'], '8.0');
  });

  it('links every result to its rule, with the level for its severity', () => {
    const levels = { CRITICAL: 'error', HIGH: 'error', MEDIUM: 'warning', LOW: 'note', UNKNOWN: 'note' };
    assert.equal(run.results.length, VULNERABILITIES.length + CONFIGURATIONS.length);
    for (const r of run.results) {
      assert.equal(rules[r.ruleIndex]?.id, r.ruleId);
      const source =
        VULNERABILITIES.find((v) => v.id === r.ruleId) ?? CONFIGURATIONS.find((c) => c.id === r.ruleId);
      assert.ok(source);
      assert.equal(r.level, levels[source.severity], r.ruleId);
      assert.ok(r.message.text.length > 0);
    }
  });

  it('locates results at the package database or the evidence, relative to the root', () => {
    const lodash = run.results.filter((r) => r.ruleId === 'GHSA-35jh-r3h4-6jhm');
    assert.deepEqual(
      lodash.map((r) => r.locations?.[0]?.physicalLocation.artifactLocation.uri).sort(),
      [LODASH_2.slice(1), LODASH_1.slice(1)].sort(),
    );
    assert.notEqual(
      lodash[0]?.partialFingerprints['containmentFinding/v1'],
      lodash[1]?.partialFingerprints['containmentFinding/v1'],
    );
    const ssh = run.results.find((r) => r.ruleId === 'remote_shell_installed');
    assert.deepEqual(
      ssh?.locations?.map((l) => l.physicalLocation.artifactLocation.uri),
      ['usr/sbin/sshd', 'etc/ssh/sshd_config'],
    );
    for (const r of run.results) {
      for (const l of r.locations ?? []) assert.ok(!l.physicalLocation.artifactLocation.uri.startsWith('/'));
    }
    const libc = run.results.find((r) => r.ruleId === 'CVE-2023-4911');
    assert.match(libc?.message.text ?? '', /libc6 2\.36-9\+deb12u1 .*fixed in 2\.36-9\+deb12u3/);
  });

  it('percent-encodes path characters that are not valid in a URI', () => {
    const odd: VulnerabilityFinding = {
      ...(VULNERABILITIES[4] as VulnerabilityFinding),
      package: { ...pkg('lodash', LODASH_1), location: '/srv/my app/node_modules/lodash/package.json' },
    };
    const sarif = JSON.parse(renderReport(fixture({ vulnerabilities: [odd] }), 'sarif')) as SarifLog;
    const uri = sarif.runs[0]?.results[0]?.locations?.[0]?.physicalLocation.artifactLocation.uri;
    assert.equal(uri, 'srv/my%20app/node_modules/lodash/package.json');
    assert.equal(sarif.runs[0]?.tool.driver.version, undefined, 'no version invented');
  });
});

interface CdxComponent {
  type: string;
  'bom-ref': string;
  name: string;
  version?: string;
  purl?: string;
}
interface CdxVulnerability {
  id: string;
  source: { name: string; url: string };
  ratings?: { severity: string; score?: number; method: string }[];
  affects: { ref: string; versions: { version: string; status: string }[] }[];
  references?: { id: string }[];
  recommendation?: string;
  analysis?: { state?: string; detail: string };
}
interface CdxBom {
  bomFormat: string;
  specVersion: string;
  serialNumber: string;
  version: number;
  metadata: {
    timestamp: string;
    tools: { components: { name: string; version?: string }[] };
    component: CdxComponent;
  };
  components: CdxComponent[];
  vulnerabilities: CdxVulnerability[];
}

describe('cyclonedx format', () => {
  const bom = JSON.parse(renderReport(fixture(), 'cyclonedx', { toolVersion: '0.1.0' })) as CdxBom;
  const refs = new Set(bom.components.map((c) => c['bom-ref']));

  it('has the required top-level fields of a CycloneDX 1.5 BOM', () => {
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.equal(bom.specVersion, '1.5');
    // The schema's serialNumber pattern.
    assert.match(
      bom.serialNumber,
      /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.equal(bom.version, 1);
    assert.equal(bom.metadata.timestamp, '2026-03-01T10:00:00.000Z');
    assert.deepEqual(bom.metadata.tools.components[0], {
      type: 'application',
      name: 'containment',
      version: '0.1.0',
    });
    assert.equal(bom.metadata.component.type, 'container');
    assert.equal(bom.metadata.component.name, 'localhost/shop:1.4');
  });

  it('gives the same serial number to the same scan, and a different one to another', () => {
    const again = JSON.parse(renderReport(fixture(), 'cyclonedx', { toolVersion: '0.1.0' })) as CdxBom;
    assert.equal(again.serialNumber, bom.serialNumber);
    const later = JSON.parse(
      renderReport(fixture({ scanTime: '2026-03-02T10:00:00.000Z' }), 'cyclonedx'),
    ) as CdxBom;
    assert.notEqual(later.serialNumber, bom.serialNumber);
  });

  it('has one component per package plus the OS, with unique bom-refs', () => {
    assert.equal(bom.components.length, PACKAGES.length + 1);
    assert.equal(refs.size, bom.components.length, 'bom-refs are unique');
    const os = bom.components.filter((c) => c.type === 'operating-system');
    assert.deepEqual(
      os.map((c) => [c.name, c.version]),
      [['debian', '12']],
    );
    const libs = bom.components.filter((c) => c.type === 'library');
    assert.equal(libs.length, PACKAGES.length);
    for (const p of PACKAGES) {
      assert.ok(
        libs.some((c) => c.name === p.name && c.version === p.version && c.purl === p.purl),
        p.name,
      );
    }
    const lodash = libs.filter((c) => c.name === 'lodash');
    assert.equal(lodash.length, 2, 'a package installed twice is two components');
  });

  it('points every vulnerability at existing components, one entry per advisory id', () => {
    for (const v of bom.vulnerabilities) {
      assert.ok(v.affects.length > 0, v.id);
      for (const a of v.affects) assert.ok(refs.has(a.ref), `${v.id} → ${a.ref}`);
      assert.equal(v.source.url, `https://osv.dev/vulnerability/${v.id}`);
    }
    const found = bom.vulnerabilities.filter((v) => !v.analysis);
    assert.deepEqual(new Set(found.map((v) => v.id)).size, found.length);
    assert.deepEqual(new Set(found.map((v) => v.id)), new Set(VULNERABILITIES.map((v) => v.id)));

    const openssl = found.find((v) => v.id === 'CVE-2024-0727');
    const affected = openssl?.affects.map((a) => bom.components.find((c) => c['bom-ref'] === a.ref)?.name);
    assert.deepEqual(affected?.sort(), ['libssl3', 'openssl']);
    assert.deepEqual(
      openssl?.references?.map((r) => r.id),
      ['DLA-3786-1', 'DSA-5678-1', 'GHSA-9v9h-cgj8-h64p', 'USN-6622-1'],
    );
    assert.match(openssl?.recommendation ?? '', /upgrade libssl3 to 3\.0\.13-1~deb12u1/);
    const lodash = found.find((v) => v.id === 'GHSA-35jh-r3h4-6jhm');
    assert.equal(new Set(lodash?.affects.map((a) => a.ref)).size, 2, 'both copies of lodash');
  });

  it('rates with the schema enums: lowercase severity, CVSS method only with a score', () => {
    const severities = new Set(['critical', 'high', 'medium', 'low', 'info', 'none', 'unknown']);
    const methods = new Set(['CVSSv2', 'CVSSv3', 'CVSSv31', 'CVSSv4', 'OWASP', 'SSVC', 'other']);
    for (const v of bom.vulnerabilities.filter((x) => !x.analysis)) {
      const source = VULNERABILITIES.find((f) => f.id === v.id);
      assert.ok(source);
      const [rating] = v.ratings ?? [];
      assert.ok(rating && severities.has(rating.severity) && methods.has(rating.method), v.id);
      assert.equal(rating.severity, source.severity.toLowerCase());
      assert.equal(rating.score, source.score);
      assert.equal(rating.method, source.score !== undefined ? 'CVSSv3' : 'other');
    }
  });

  it('keeps ignored vulnerabilities with their reason, without claiming a state', () => {
    const ignored = bom.vulnerabilities.filter((v) => v.analysis);
    assert.deepEqual(
      ignored.map((v) => v.id),
      ['GHSA-9wx4-h78v-vm56'],
    );
    const [entry] = ignored;
    assert.equal(entry?.analysis?.state, undefined);
    assert.equal(
      entry?.analysis?.detail,
      'ignored until 2026-06-30: requests is only used against our own API',
    );
    assert.equal(bom.components.find((c) => c['bom-ref'] === entry?.affects[0]?.ref)?.name, 'requests');
  });

  it('adds a component for a finding whose package is missing from the inventory', () => {
    const orphan: VulnerabilityFinding = {
      ...(VULNERABILITIES[4] as VulnerabilityFinding),
      package: { name: 'left-pad', version: '1.0.0', ecosystem: 'npm', location: '/x/package.json' },
    };
    const b = JSON.parse(renderReport(fixture({ vulnerabilities: [orphan] }), 'cyclonedx')) as CdxBom;
    const ref = b.vulnerabilities[0]?.affects[0]?.ref;
    assert.equal(b.components.find((c) => c['bom-ref'] === ref)?.name, 'left-pad');
  });

  it('computes name-based UUIDs as RFC 4122 version 5', () => {
    // Python's documented example: uuid5(NAMESPACE_DNS, 'python.org').
    assert.equal(
      uuidV5('python.org', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'),
      '886313e1-3b8a-5372-9b90-0c9aee199e5d',
    );
  });
});

describe('renderReport', () => {
  it('ends every format with a newline and rejects an unknown format', () => {
    for (const format of ['table', 'json', 'sarif', 'cyclonedx'] as const) {
      assert.ok(renderReport(fixture(), format).endsWith('\n'), format);
    }
    assert.throws(
      () => renderReport(fixture(), 'xml' as ReportFormat),
      (e: unknown) => e instanceof ContainmentError && e.code === 'USAGE' && /xml/.test(e.message),
    );
  });
});
