import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DirectoryRootFs } from './fs/directory-root-fs.js';
import { detectOs, osvEcosystem, parseOsRelease } from './os-release.js';

const temp = mkdtempSync(join(tmpdir(), 'containment-os-release-'));
after(() => rmSync(temp, { recursive: true, force: true }));
let rootCount = 0;

/** A root directory holding the given files (path → content, or `{ link }` for a symlink). */
function makeRoot(files: Record<string, string | { link: string }>): DirectoryRootFs {
  const root = join(temp, `root-${rootCount++}`);
  mkdirSync(root);
  for (const [path, content] of Object.entries(files)) {
    const host = join(root, path);
    mkdirSync(dirname(host), { recursive: true });
    if (typeof content === 'string') writeFileSync(host, content);
    else symlinkSync(content.link, host);
  }
  return new DirectoryRootFs(root);
}

describe('parseOsRelease', () => {
  test('handles double, single and no quotes, escapes, comments, CRLF and junk lines', () => {
    const fields = parseOsRelease(
      [
        '# comment',
        'NAME="Debian GNU/Linux"',
        "PRETTY_NAME='single $quoted \\n'",
        'ID=debian',
        'VERSION="12 (\\"bookworm\\") \\$x \\\\ \\q"',
        'CODE=a"b c"\'d\'',
        'TRAILING=value # a comment',
        'EMPTY=',
        'NOT A PAIR',
        '1BAD=x',
        'OPEN="never closed',
        'CRLF=yes\r',
        '',
      ].join('\n'),
    );
    assert.deepEqual(fields, {
      NAME: 'Debian GNU/Linux',
      PRETTY_NAME: 'single $quoted \\n',
      ID: 'debian',
      VERSION: '12 ("bookworm") $x \\ \\q',
      CODE: 'ab cd',
      TRAILING: 'value',
      EMPTY: '',
      CRLF: 'yes',
    });
  });
});

describe('osvEcosystem', () => {
  const cases: Array<[string, Record<string, string>, string | undefined]> = [
    ['debian 12', { ID: 'debian', VERSION_ID: '12', VERSION: '12 (bookworm)' }, 'Debian:12'],
    ['old debian keeps .0', { ID: 'debian', VERSION_ID: '6.0.10' }, 'Debian:6.0'],
    ['debian sid has no release', { ID: 'debian', VERSION_CODENAME: 'trixie' }, undefined],
    [
      'ubuntu LTS',
      { ID: 'ubuntu', VERSION_ID: '22.04', VERSION: '22.04.4 LTS (Jammy Jellyfish)' },
      'Ubuntu:22.04:LTS',
    ],
    [
      'ubuntu interim',
      { ID: 'ubuntu', VERSION_ID: '23.10', VERSION: '23.10 (Mantic Minotaur)' },
      'Ubuntu:23.10',
    ],
    ['alpine patch dropped', { ID: 'alpine', VERSION_ID: '3.20.3' }, 'Alpine:v3.20'],
    ['alpine edge', { ID: 'alpine', VERSION_ID: '3.22.0_alpha20250108' }, 'Alpine:v3.22'],
    ['rhel', { ID: 'rhel', VERSION_ID: '9.4' }, 'Red Hat:enterprise_linux:9::baseos'],
    ['rocky', { ID: 'rocky', VERSION_ID: '9.3' }, 'Rocky Linux:9'],
    ['alma', { ID: 'almalinux', VERSION_ID: '8.10' }, 'AlmaLinux:8'],
    ['photon', { ID: 'photon', VERSION_ID: '5.0' }, 'Photon OS:5.0'],
    ['mageia', { ID: 'mageia', VERSION_ID: '9' }, 'Mageia:9'],
    ['wolfi', { ID: 'wolfi', VERSION_ID: '20230201' }, 'Wolfi'],
    ['chainguard', { ID: 'chainguard' }, 'Chainguard'],
    [
      'openEuler LTS SP',
      { ID: 'openEuler', VERSION_ID: '22.03', VERSION: '22.03 (LTS-SP3)' },
      'openEuler:22.03-LTS-SP3',
    ],
    ['openEuler innovation', { ID: 'openEuler', VERSION_ID: '23.09', VERSION: '23.09' }, 'openEuler:23.09'],
    ['azure linux', { ID: 'azurelinux', VERSION_ID: '3.0' }, 'Azure Linux:3'],
    [
      'opensuse leap',
      { ID: 'opensuse-leap', VERSION_ID: '15.6', PRETTY_NAME: 'openSUSE Leap 15.6' },
      'openSUSE:Leap 15.6',
    ],
    [
      'opensuse tumbleweed',
      { ID: 'opensuse-tumbleweed', PRETTY_NAME: 'openSUSE Tumbleweed' },
      'openSUSE:Tumbleweed',
    ],
    [
      'sles',
      { ID: 'sles', PRETTY_NAME: 'SUSE Linux Enterprise Server 15 SP5' },
      'SUSE:Linux Enterprise Server 15 SP5',
    ],
    ['fedora is not in OSV', { ID: 'fedora', VERSION_ID: '40' }, undefined],
    ['no id', { VERSION_ID: '1' }, undefined],
  ];
  for (const [name, fields, expected] of cases) {
    test(name, () => assert.equal(osvEcosystem(fields), expected));
  }
});

describe('detectOs', () => {
  test('reads this machine’s real /etc/os-release (a Debian host)', async () => {
    const real = readFileSync('/etc/os-release', 'utf8');
    const fields = parseOsRelease(real);
    const os = await detectOs(makeRoot({ 'etc/os-release': real }));
    assert.equal(os?.id, fields.ID);
    assert.equal(os?.versionId, fields.VERSION_ID);
    assert.equal(os?.prettyName, fields.PRETTY_NAME);
    if (fields.ID === 'debian' && fields.VERSION_ID) {
      assert.equal(os?.ecosystem, `Debian:${fields.VERSION_ID.split('.')[0]}`);
    }
  });

  test('follows /etc/os-release → ../usr/lib/os-release inside the root', async () => {
    const os = await detectOs(
      makeRoot({
        'usr/lib/os-release': 'ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n',
        'etc/os-release': { link: '../usr/lib/os-release' },
      }),
    );
    assert.deepEqual(os, {
      id: 'alpine',
      versionId: '3.19.1',
      prettyName: 'Alpine Linux v3.19',
      ecosystem: 'Alpine:v3.19',
    });
  });

  test('falls back to /usr/lib/os-release when /etc/os-release is missing', async () => {
    const os = await detectOs(makeRoot({ 'usr/lib/os-release': 'ID="rocky"\nVERSION_ID="9.3"\n' }));
    assert.equal(os?.ecosystem, 'Rocky Linux:9');
  });

  test('an absolute link to the host’s os-release is resolved inside the root', async () => {
    // The link target exists on the host (this file), but not in the root: nothing is found.
    const os = await detectOs(makeRoot({ 'etc/os-release': { link: '/etc/os-release' } }));
    assert.equal(os, undefined);
  });

  test('old Debian without os-release: /etc/debian_version', async () => {
    const os = await detectOs(makeRoot({ 'etc/debian_version': '6.0.10\n' }));
    assert.deepEqual(os, { id: 'debian', versionId: '6.0.10', ecosystem: 'Debian:6.0' });
    const sid = await detectOs(makeRoot({ 'etc/debian_version': 'trixie/sid\n' }));
    assert.deepEqual(sid, { id: 'debian', versionCodename: 'trixie' });
  });

  test('Alpine without os-release: /etc/alpine-release', async () => {
    const os = await detectOs(makeRoot({ 'etc/alpine-release': '3.20.3\n' }));
    assert.equal(os?.ecosystem, 'Alpine:v3.20');
  });

  test('unknown distribution: OsInfo without ecosystem; empty root: undefined', async () => {
    const os = await detectOs(makeRoot({ 'etc/os-release': 'ID=fedora\nVERSION_ID=40\n' }));
    assert.deepEqual(os, { id: 'fedora', versionId: '40' });
    assert.equal(await detectOs(makeRoot({})), undefined);
  });

  test('an oversized os-release is ignored, not read whole', async () => {
    const os = await detectOs(
      makeRoot({
        'etc/os-release': 'ID=debian\nVERSION_ID=12\n' + '#'.repeat(100 * 1024),
        'usr/lib/os-release': 'ID=debian\nVERSION_ID=11\n',
      }),
    );
    assert.equal(os?.ecosystem, 'Debian:11');
  });
});
