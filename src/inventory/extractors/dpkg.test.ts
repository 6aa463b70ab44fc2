import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { requireOrSkip, sharedDataOrSkip } from '../../testing/shared-data.js';
import type { OsInfo } from '../types.js';
import { contextFor } from './extractor.test-helper.js';
import { dpkgExtractor, dpkgStatusIsPresent, parseControlParagraphs, parseDpkgStatus } from './dpkg.js';

const temp = mkdtempSync(join(tmpdir(), 'containment-dpkg-'));
after(() => rmSync(temp, { recursive: true, force: true }));
let rootCount = 0;

function newRoot(): string {
  const root = join(temp, `root-${rootCount++}`);
  mkdirSync(join(root, 'var/lib/dpkg/status.d'), { recursive: true });
  return root;
}

const DEBIAN_12: OsInfo = { id: 'debian', versionId: '12', ecosystem: 'Debian:12' };

describe('parseControlParagraphs', () => {
  test('continuation lines, several paragraphs, CRLF and extra blank lines', () => {
    const text =
      'Package: a\r\nDescription: one\r\n two\r\n .\r\n\r\n\r\nPackage: b\r\nVersion: 1\r\n \t\r\n';
    const ps = parseControlParagraphs(text);
    assert.equal(ps.length, 2);
    assert.equal(ps[0]?.get('description'), 'one\ntwo\n.');
    assert.equal(ps[1]?.get('version'), '1');
  });
});

describe('dpkgStatusIsPresent', () => {
  const cases: Array<[string | undefined, boolean]> = [
    ['install ok installed', true],
    ['hold ok installed', true],
    ['deinstall ok installed', true], // marked for removal, files still there
    ['install ok unpacked', true],
    ['install ok half-configured', true],
    ['install ok triggers-pending', true],
    ['deinstall ok config-files', false],
    ['purge ok not-installed', false],
    ['install reinstreq half-installed', false],
    ['garbage', false],
    [undefined, true], // status.d
  ];
  for (const [status, expected] of cases) {
    test(`${status ?? '(no Status field)'} → ${expected}`, () =>
      assert.equal(dpkgStatusIsPresent(status), expected));
  }
});

describe('parseDpkgStatus', () => {
  test('keeps source packages with and without their own version; drops removed ones', () => {
    const text = [
      'Package: libssl3',
      'Status: install ok installed',
      'Architecture: amd64',
      'Source: openssl (3.0.11-1~deb12u2)',
      'Version: 3.0.11-1~deb12u2+b1',
      '',
      'Package: libc6',
      'Status: hold ok installed',
      'Architecture: amd64',
      'Source: glibc',
      'Version: 2.36-9+deb12u4',
      '',
      'Package: old',
      'Status: deinstall ok config-files',
      'Version: 1.0',
      '',
      'Package: bash',
      'Status: install ok installed',
      'Version: 5.2.15-2+b2',
      '',
      'Package: noversion',
      'Status: install ok installed',
    ].join('\n');
    const pkgs = parseDpkgStatus(text, '/var/lib/dpkg/status', 'Debian:12', DEBIAN_12);
    assert.deepEqual(
      pkgs.map((p) => [p.name, p.version, p.source?.name, p.source?.version]),
      [
        ['libssl3', '3.0.11-1~deb12u2+b1', 'openssl', '3.0.11-1~deb12u2'],
        ['libc6', '2.36-9+deb12u4', 'glibc', '2.36-9+deb12u4'],
        ['bash', '5.2.15-2+b2', undefined, undefined],
      ],
    );
    assert.equal(pkgs[1]?.purl, 'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12');
    assert.ok(pkgs.every((p) => p.ecosystem === 'Debian:12' && p.extractor === 'dpkg'));
  });

  test('epoch stays readable in the purl', () => {
    const [p] = parseDpkgStatus(
      'Package: x\nVersion: 1:2.0-1\nArchitecture: all\n',
      '/s',
      'Debian:12',
      DEBIAN_12,
    );
    assert.equal(p?.purl, 'pkg:deb/debian/x@1:2.0-1?arch=all&distro=debian-12');
  });
});

describe('dpkgExtractor', () => {
  test('real sample status file from osv-scanner', async (t) => {
    const data = sharedDataOrSkip(t);
    if (!data) return;
    const sample = join(data, 'acceptance', 'osv-scanner__locks-many_status.dpkg');
    const text = readFileSync(sample, 'utf8');
    const root = newRoot();
    copyFileSync(sample, join(root, 'var/lib/dpkg/status'));
    const ctx = await contextFor(root, DEBIAN_12);
    const pkgs = await dpkgExtractor.extract(ctx);
    const expected = parseControlParagraphs(text).filter((p) => p.get('status') === 'install ok installed');
    assert.ok(expected.length > 0);
    assert.equal(pkgs.length, expected.length);
    assert.deepEqual(
      pkgs.map((p) => [p.name, p.version]),
      expected.map((p) => [p.get('package'), p.get('version')]),
    );
    assert.equal(pkgs[0]?.name, 'adduser');
    assert.equal(pkgs[0]?.version, '3.118');
    assert.equal(pkgs[0]?.location, '/var/lib/dpkg/status');
    assert.deepEqual(ctx.notes, []);
  });

  test('distroless status.d layout: one file per package, md5sums ignored', async () => {
    const root = newRoot();
    const dir = join(root, 'var/lib/dpkg/status.d');
    writeFileSync(
      join(dir, 'libssl3'),
      'Package: libssl3\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n',
    );
    writeFileSync(join(dir, 'libssl3.md5sums'), 'Package: fake\nVersion: 9\n');
    writeFileSync(
      join(dir, 'base-files'),
      'Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n',
    );
    mkdirSync(join(dir, 'nested'));
    writeFileSync(join(dir, 'nested', 'x'), 'Package: nested\nVersion: 1\n');
    const ctx = await contextFor(root, DEBIAN_12);
    const pkgs = await dpkgExtractor.extract(ctx);
    assert.deepEqual(pkgs.map((p) => [p.name, p.source?.name, p.location]).sort(), [
      ['base-files', undefined, '/var/lib/dpkg/status.d/base-files'],
      ['libssl3', 'openssl', '/var/lib/dpkg/status.d/libssl3'],
    ]);
  });

  test('the host’s own dpkg database, copied into a root, matches dpkg-query', async (t) => {
    const available = existsSync('/var/lib/dpkg/status') && existsSync('/usr/bin/dpkg-query');
    if (!requireOrSkip(t, available, 'dpkg-query and /var/lib/dpkg/status')) return;
    const root = newRoot();
    copyFileSync('/var/lib/dpkg/status', join(root, 'var/lib/dpkg/status'));
    const pkgs = await dpkgExtractor.extract(await contextFor(root, DEBIAN_12));
    const listed = execFileSync(
      'dpkg-query',
      ['-W', '-f', '${db:Status-Abbrev} ${binary:Package} ${Version} ${source:Package} ${source:Version}\n'],
      {
        encoding: 'utf8',
      },
    )
      .split('\n')
      .filter((l) => l.startsWith('ii'));
    assert.equal(pkgs.length, listed.length);
    const ours = new Set(
      pkgs.map((p) => `${p.name} ${p.version} ${p.source?.name ?? p.name} ${p.source?.version ?? p.version}`),
    );
    for (const line of listed) {
      const [, binary, version, srcName, srcVersion] = line.trim().split(/\s+/);
      const name = (binary ?? '').split(':')[0]; // binary:Package adds :arch for multi-arch same
      assert.ok(ours.has(`${name} ${version} ${srcName} ${srcVersion}`), `missing ${line}`);
    }
  });

  test('an unknown distribution still yields packages, with a note', async () => {
    const root = newRoot();
    writeFileSync(
      join(root, 'var/lib/dpkg/status'),
      'Package: a\nStatus: install ok installed\nVersion: 1\n',
    );
    const ctx = await contextFor(root, {
      id: 'debian',
      versionCodename: 'trixie',
      prettyName: 'Debian GNU/Linux trixie/sid',
    });
    const pkgs = await dpkgExtractor.extract(ctx);
    assert.equal(pkgs[0]?.ecosystem, 'Debian');
    assert.equal(ctx.notes.length, 1);
    assert.match(ctx.notes[0] ?? '', /trixie\/sid/);
  });

  test('a status link pointing at the host database is resolved inside the root', async () => {
    const root = newRoot();
    // The absolute target is the host's real database; inside the root it does not exist.
    symlinkSync('/var/lib/dpkg/status', join(root, 'var/lib/dpkg/status'));
    symlinkSync('/var/lib/dpkg/status', join(root, 'var/lib/dpkg/status.d/evil'));
    const ctx = await contextFor(root, DEBIAN_12);
    assert.deepEqual(await dpkgExtractor.extract(ctx), []);
    // Not read from the host, and not taken for "no database" either: it is there, unreadable.
    assert.deepEqual(ctx.notes, [
      '[PACKAGE_DB_UNREADABLE] dpkg: /var/lib/dpkg/status: a link that leads nowhere',
    ]);
  });
});
