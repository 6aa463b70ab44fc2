import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ContainmentError } from '../errors.js';
import type { InsecureConfiguration } from '../inventory/types.js';
import type { VulnerabilityFinding } from '../matching/types.js';
import { applyIgnores, ignoreEntryApplies, loadIgnoreFile, parseIgnoreFile } from './ignore-file.js';
import type { IgnoreEntry } from './ignore-file.js';

function finding(
  id: string,
  aliases: string[],
  name: string,
  source?: string,
  extra: Partial<VulnerabilityFinding> = {},
): VulnerabilityFinding {
  return {
    id,
    aliases,
    package: {
      name,
      version: '1.0-1',
      ecosystem: 'Debian:12',
      location: '/var/lib/dpkg/status',
      ...(source ? { source: { name: source, version: '1.0-1' } } : {}),
    },
    severity: 'HIGH',
    ...extra,
  };
}

const FINDINGS: VulnerabilityFinding[] = [
  finding('CVE-2024-0727', ['DSA-5678-1', 'GHSA-9v9h-cgj8-h64p'], 'libssl3', 'openssl'),
  finding('CVE-2024-0727', ['DSA-5678-1', 'GHSA-9v9h-cgj8-h64p'], 'openssl', 'openssl'),
  finding('CVE-2023-4911', ['DSA-5514-1'], 'libc6', 'glibc'),
  // A Debian LTS advisory fixing several CVEs: its upstream ids are not its aliases.
  finding('DLA-3500-1', [], 'tar', undefined, { upstream: ['CVE-2022-48303', 'CVE-2023-39804'] }),
];

const CONFIGS: InsecureConfiguration[] = [
  { id: 'remote_shell_installed', severity: 'HIGH', title: 'sshd installed', evidence: ['/usr/sbin/sshd'] },
  { id: 'root_user', severity: 'MEDIUM', title: 'runs as root', evidence: ['config.User'] },
];

const NOW = new Date('2026-03-01T12:00:00Z');

function entry(id: string, more: Partial<IgnoreEntry> = {}): IgnoreEntry {
  return { id, reason: `accepted ${id}`, expires: '2026-12-31', ...more };
}

const ids = (items: readonly { id: string; package?: { name: string } }[]): string[] =>
  items.map((f) => (f.package ? `${f.id}@${f.package.name}` : f.id));

describe('parseIgnoreFile', () => {
  it('reads entries with id, reason, expiry and optional package', () => {
    const entries = parseIgnoreFile(
      JSON.stringify({
        ignore: [
          { id: ' CVE-2023-4911 ', reason: 'no setuid binaries', expires: '2027-01-31' },
          { id: 'GHSA-9v9h-cgj8-h64p', reason: 'not reachable', expires: '2026-12-31', package: 'openssl' },
        ],
      }),
    );
    assert.deepEqual(entries, [
      { id: 'CVE-2023-4911', reason: 'no setuid binaries', expires: '2027-01-31' },
      { id: 'GHSA-9v9h-cgj8-h64p', reason: 'not reachable', expires: '2026-12-31', package: 'openssl' },
    ]);
    assert.deepEqual(parseIgnoreFile('{"ignore": []}'), []);
  });

  const invalid: [string, unknown, RegExp][] = [
    [
      'missing reason',
      { ignore: [entry('A'), { id: 'B', expires: '2026-01-01' }] },
      /entry 1, field "reason": is required/,
    ],
    [
      'blank reason',
      { ignore: [{ id: 'B', reason: '   ', expires: '2026-01-01' }] },
      /entry 0, field "reason": must be a non-empty string/,
    ],
    ['missing expiry', { ignore: [{ id: 'B', reason: 'r' }] }, /entry 0, field "expires": is required/],
    [
      'not a date',
      { ignore: [{ id: 'B', reason: 'r', expires: '31/01/2027' }] },
      /entry 0, field "expires": must be a date YYYY-MM-DD/,
    ],
    [
      'month 13',
      { ignore: [{ id: 'B', reason: 'r', expires: '2026-13-01' }] },
      /field "expires": must be a date/,
    ],
    [
      'February 30',
      { ignore: [{ id: 'B', reason: 'r', expires: '2026-02-30' }] },
      /field "expires": must be a date/,
    ],
    [
      'a timestamp',
      { ignore: [{ id: 'B', reason: 'r', expires: '2026-02-01T00:00:00Z' }] },
      /field "expires"/,
    ],
    [
      'a number',
      { ignore: [{ id: 'B', reason: 'r', expires: 20260201 }] },
      /field "expires": must be a date/,
    ],
    ['missing id', { ignore: [{ reason: 'r', expires: '2026-01-01' }] }, /entry 0, field "id": is required/],
    [
      'typo key',
      { ignore: [{ id: 'B', reason: 'r', expires: '2026-01-01', expiry: '2027-01-01' }] },
      /entry 0: unknown key\(s\) "expiry"/,
    ],
    [
      'control character',
      { ignore: [{ id: 'B\u001b[2J', reason: 'r', expires: '2026-01-01' }] },
      /field "id": must not contain control characters/,
    ],
    ['entry not an object', { ignore: ['CVE-2023-4911'] }, /entry 0: must be an object/],
    ['top-level array', [entry('A')], /expected an object \{"ignore"/],
    [
      'unknown top-level key',
      { ignore: [], vulnerabilities: [] },
      /unknown top-level key\(s\) "vulnerabilities"/,
    ],
  ];
  for (const [name, data, message] of invalid) {
    it(`rejects ${name} with CONFIG_INVALID on one line`, () => {
      assert.throws(
        () => parseIgnoreFile(JSON.stringify(data), 'ignore.json'),
        (e: unknown) => {
          assert.ok(e instanceof ContainmentError);
          assert.equal(e.code, 'CONFIG_INVALID');
          assert.match(e.message, /^ignore\.json: /);
          assert.match(e.message, message);
          assert.ok(!e.message.includes('\n'), e.message);
          return true;
        },
      );
    });
  }

  it('rejects text that is not JSON', () => {
    assert.throws(
      () => parseIgnoreFile('CVE-2023-4911  # a .trivyignore line', 'x.json'),
      (e: unknown) =>
        e instanceof ContainmentError && e.code === 'CONFIG_INVALID' && /not valid JSON/.test(e.message),
    );
  });
});

describe('loadIgnoreFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'containment-ignore-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file from disk', () => {
    const path = join(dir, 'ignore.json');
    writeFileSync(path, JSON.stringify({ ignore: [entry('CVE-2023-4911')] }));
    assert.deepEqual(loadIgnoreFile(path), [entry('CVE-2023-4911')]);
  });

  it('names the file when it is missing or invalid', () => {
    const missing = join(dir, 'nope.json');
    assert.throws(
      () => loadIgnoreFile(missing),
      (e: unknown) =>
        e instanceof ContainmentError &&
        e.code === 'CONFIG_INVALID' &&
        e.message.includes(missing) &&
        /ENOENT/.test(e.message),
    );
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"ignore": [{"id": "X"}]}');
    assert.throws(
      () => loadIgnoreFile(bad),
      (e: unknown) => e instanceof ContainmentError && e.message.startsWith(`${bad}: entry 0`),
    );
  });
});

describe('applyIgnores', () => {
  const apply = (entries: IgnoreEntry[], now = NOW) =>
    applyIgnores({ vulnerabilities: FINDINGS, insecureConfigurations: CONFIGS }, entries, now);

  it('keeps everything when nothing matches', () => {
    const out = apply([entry('CVE-1999-0001')]);
    assert.deepEqual(out.vulnerabilities, FINDINGS);
    assert.deepEqual(out.insecureConfigurations, CONFIGS);
    assert.deepEqual(out.ignored, []);
    assert.deepEqual(out.notes, []);
  });

  it('matches the finding id or any alias, in any letter case', () => {
    const byAlias = apply([entry('ghsa-9v9h-cgj8-h64p')]);
    assert.deepEqual(ids(byAlias.ignored), ['CVE-2024-0727@libssl3', 'CVE-2024-0727@openssl']);
    assert.deepEqual(ids(byAlias.vulnerabilities), ['CVE-2023-4911@libc6', 'DLA-3500-1@tar']);
    const byId = apply([entry('CVE-2023-4911', { reason: 'no setuid binaries', expires: '2027-01-31' })]);
    assert.deepEqual(byId.ignored, [
      {
        id: 'CVE-2023-4911',
        reason: 'no setuid binaries',
        expires: '2027-01-31',
        kind: 'vulnerability',
        package: { name: 'libc6', version: '1.0-1' },
      },
    ]);
  });

  it('does not match upstream ids: ignoring one CVE must not hide an advisory fixing several', () => {
    const out = apply([entry('CVE-2022-48303')]);
    assert.deepEqual(out.ignored, []);
    assert.ok(out.vulnerabilities.some((f) => f.id === 'DLA-3500-1'));
  });

  it('narrows to a package by its name or its source package name', () => {
    const binary = apply([entry('CVE-2024-0727', { package: 'libssl3' })]);
    assert.deepEqual(ids(binary.ignored), ['CVE-2024-0727@libssl3']);
    assert.ok(ids(binary.vulnerabilities).includes('CVE-2024-0727@openssl'));
    const source = apply([entry('DSA-5678-1', { package: 'openssl' })]);
    assert.deepEqual(ids(source.ignored), ['CVE-2024-0727@libssl3', 'CVE-2024-0727@openssl']);
    const other = apply([entry('CVE-2024-0727', { package: 'libc6' })]);
    assert.deepEqual(other.ignored, []);
  });

  it('ignores insecure configurations by id, but not with a package-narrowed entry', () => {
    const out = apply([entry('remote_shell_installed', { reason: 'sshd removed at build' })]);
    assert.deepEqual(ids(out.insecureConfigurations), ['root_user']);
    assert.deepEqual(out.ignored, [
      {
        id: 'remote_shell_installed',
        reason: 'sshd removed at build',
        expires: '2026-12-31',
        kind: 'configuration',
      },
    ]);
    assert.deepEqual(apply([entry('root_user', { package: 'libc6' })]).ignored, []);
  });

  it('applies through the end of the expiry day, UTC, and not a millisecond later', () => {
    const e = entry('CVE-2023-4911', { expires: '2026-03-31' });
    assert.equal(ignoreEntryApplies(e, new Date('2026-03-31T00:00:00Z')), true);
    assert.equal(ignoreEntryApplies(e, new Date('2026-03-31T23:59:59.999Z')), true);
    assert.equal(ignoreEntryApplies(e, new Date('2026-04-01T00:00:00.000Z')), false);
    // 23:30 on the 31st in New York is already April 1st in UTC.
    assert.equal(ignoreEntryApplies(e, new Date('2026-03-31T23:30:00-04:00')), false);

    const expired = apply([e], new Date('2026-04-01T00:00:00Z'));
    assert.deepEqual(expired.ignored, []);
    assert.ok(expired.vulnerabilities.some((f) => f.id === 'CVE-2023-4911'));
    assert.deepEqual(expired.notes, ['ignore entry CVE-2023-4911 expired on 2026-03-31; it applies no more']);

    const lastDay = apply([e], new Date('2026-03-31T23:59:59Z'));
    assert.deepEqual(ids(lastDay.ignored), ['CVE-2023-4911@libc6']);
    assert.deepEqual(lastDay.notes, []);
  });

  it('uses a later entry when an earlier one for the same id has expired', () => {
    const out = apply([
      entry('CVE-2023-4911', { expires: '2026-01-31', reason: 'old' }),
      entry('CVE-2023-4911', { expires: '2026-06-30', reason: 'renewed' }),
    ]);
    assert.deepEqual(
      out.ignored.map((i) => i.reason),
      ['renewed'],
    );
    assert.equal(out.notes.length, 1);
  });

  it('is pure: the inputs are left as they were', () => {
    const findings = structuredClone(FINDINGS);
    const configs = structuredClone(CONFIGS);
    const entries = [entry('CVE-2024-0727'), entry('root_user', { expires: '2020-01-01' })];
    const frozen = structuredClone(entries);
    const first = applyIgnores({ vulnerabilities: findings, insecureConfigurations: configs }, entries, NOW);
    const second = applyIgnores({ vulnerabilities: findings, insecureConfigurations: configs }, entries, NOW);
    assert.deepEqual(first, second);
    assert.deepEqual(findings, FINDINGS);
    assert.deepEqual(configs, CONFIGS);
    assert.deepEqual(entries, frozen);
    assert.equal(
      first.vulnerabilities.length + first.ignored.filter((i) => i.kind === 'vulnerability').length,
      FINDINGS.length,
    );
  });
});
