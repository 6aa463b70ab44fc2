/** The tricky cases of each comparator, plus the registry API. Vector files: vectors.test.ts. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ContainmentError, ErrorCodes } from '../errors.js';
import {
  baseEcosystem,
  compareSemver,
  compareVersions,
  getComparator,
  supportedEcosystems,
} from './index.js';

/** Asserts that `versions` is strictly ascending in `ecosystem` (every pair, both ways). */
function ascending(ecosystem: string, versions: string[]): void {
  for (let i = 0; i < versions.length; i++) {
    for (let j = i + 1; j < versions.length; j++) {
      const [a, b] = [versions[i] as string, versions[j] as string];
      assert.equal(compareVersions(ecosystem, a, b), -1, `${ecosystem}: ${a} < ${b}`);
      assert.equal(compareVersions(ecosystem, b, a), 1, `${ecosystem}: ${b} > ${a}`);
    }
  }
}

function equal(ecosystem: string, a: string, b: string): void {
  assert.equal(compareVersions(ecosystem, a, b), 0, `${ecosystem}: ${a} = ${b}`);
}

function valid(ecosystem: string, yes: string[], no: string[]): void {
  const c = getComparator(ecosystem);
  assert.ok(c);
  for (const v of yes) assert.equal(c.isValid(v), true, `${ecosystem}: ${v} is valid`);
  for (const v of no) assert.equal(c.isValid(v), false, `${ecosystem}: ${v} is invalid`);
}

describe('registry', () => {
  test('names every ecosystem as OSV spells it, release suffixes ignored', () => {
    const expected = ['AlmaLinux', 'Alpine', 'Chainguard', 'Debian', 'Go', 'Mageia', 'Maven', 'NuGet'];
    expected.push('Packagist', 'Photon OS', 'PyPI', 'Red Hat', 'Rocky Linux', 'RubyGems', 'SUSE');
    expected.push(
      'Ubuntu',
      'Wolfi',
      'crates.io',
      'npm',
      'openEuler',
      'openSUSE',
      'Azure Linux',
      'MinimOS',
      'Alpaquita',
    );
    assert.deepEqual(supportedEcosystems(), expected.sort());
    assert.equal(getComparator('Debian:12'), getComparator('Ubuntu:22.04:LTS'));
    assert.equal(getComparator('Alpine:v3.20')?.ecosystem, 'Alpine');
    assert.equal(getComparator('Rocky Linux:9')?.ecosystem, 'Red Hat');
    assert.equal(getComparator('pypi'), undefined, 'names are case-sensitive');
    assert.equal(baseEcosystem('Ubuntu:Pro:22.04:LTS'), 'Ubuntu');
    assert.equal(baseEcosystem('npm'), 'npm');
  });

  test('an unknown ecosystem is a typed error, not a crash', () => {
    assert.throws(
      () => compareVersions('Hackage', '1', '2'),
      (e: unknown) => e instanceof ContainmentError && e.code === ErrorCodes.ECOSYSTEM_UNSUPPORTED,
    );
  });
});

describe('Debian / Ubuntu (dpkg)', () => {
  test('epoch, tilde, letters before punctuation, numeric runs, implicit revision', () => {
    ascending('Debian', ['1.0~~', '1.0~rc1', '1.0', '1.0-0.1', '1.0a', '1.0+dfsg', '1.9', '1.10', '1:0.1']);
    ascending('Ubuntu', ['2.4.2-6', '2.4.2-6ubuntu1', '2.4.2-6+lenny1', '2.4.2-10']);
    equal('Debian', '1.0', '0:1.0-0');
    equal('Debian', '1.001', '1.1');
  });
  test('isValid follows dpkg', () => {
    valid('Debian', ['1:2.3-4', '2.3~rc1', '1.0-1-2'], ['', 'a1.0', 'x:1.0', '1.0-', '1.0 2']);
  });
});

describe('RPM', () => {
  test('epoch, tilde, caret, and a missing release sorts first', () => {
    ascending('Red Hat', [
      '1.0~rc1',
      '1.0',
      '1.0^git1',
      '1.0.1',
      '1.0.1-1',
      '1.0.1-1.el8',
      '1.0.1-2',
      '1:0.1',
    ]);
    equal('AlmaLinux', '0:1.2-3', '1.2-3');
    // A non-numeric prefix before ':' is no epoch (module streams).
    ascending('openSUSE', ['1.m+e2:1', '4.m+e1:1']);
  });
});

describe('Alpine (apk-tools)', () => {
  test('suffixes, letters, revisions', () => {
    const order = ['1.2_alpha', '1.2_beta2', '1.2_pre1', '1.2_rc1', '1.2', '1.2-r1', '1.2_cvs1'];
    ascending('Alpine', [...order, '1.2_svn', '1.2_git1', '1.2_hg1', '1.2_p1', '1.2_p2', '1.2a', '1.2.1']);
    ascending('Wolfi', ['1.0~1234-r0', '1.0~1234-r1', '1.0~2345-r0']);
  });
  test('strings apk-tools 3 rejects never throw and keep real versions ordered', () => {
    assert.equal(compareVersions('Alpine', '1-ruff', '1'), -1);
    assert.equal(compareVersions('Alpine', '1.0-r', '1.0-r0'), -1);
    ascending('Chainguard', ['6.6.2p1-r0', '6.6.2p1-r1', '6.6.2p2-r0']);
    valid('Alpine', ['1.2.3-r0', '0.1_pre2~1234abcd', '1.0_p1'], ['6.6.2p1-r0', '1.0-r', '1.0_foo', '']);
  });
});

describe('PyPI', () => {
  test('PEP 440 order with epochs, dev, post and local versions', () => {
    ascending('PyPI', ['1.0.dev1', '1.0a1', '1.0rc1', '1.0', '1.0+local', '1.0.post1', '1.1', '1!0.1']);
    equal('PyPI', '1.0', '1.0.0');
  });
  test('legacy (non PEP 440) versions sort before every valid one, among themselves by the old key', () => {
    ascending('PyPI', ['0.3m1', '0.3m2', '0.9-doduo', '0.0.0.1']);
    ascending('PyPI', ['2013-01-21T20:33:09+0100', '2013-02-01T20:50:46+0100', '0.0.1']);
    valid('PyPI', ['1.0', '1!2.0.post1.dev3+abc'], ['0.9-doduo', 'trunk']);
  });
});

describe('npm', () => {
  test('node-semver strict: v allowed, = and junk not; invalid sorts first without throwing', () => {
    valid('npm', ['1.2.3', 'v1.2.3', '1.2.3-beta.1+b'], ['=1.2.3', '1.2', '01.2.3']);
    ascending('npm', ['not-a-version', '0.0.1-alpha', '0.0.1-alpha.1', '0.0.1']);
    equal('npm', '1.2.3+a', 'v1.2.3+b');
  });
});

describe('Go', () => {
  test('optional v, +incompatible ignored, pseudo-versions are prereleases', () => {
    ascending('Go', [
      '0.0.0-20210101000000-abcdef123456',
      '0.1.0',
      'v1.2.0-rc.1',
      '1.2',
      '2.0.0+incompatible',
      '2.0.1',
    ]);
    equal('Go', 'v2.0.0+incompatible', '2.0.0');
    valid('Go', ['v1', '1.2', 'v2.0.0+incompatible'], ['v1.2-pre', 'v01.0.0', '1.2.3-01']);
  });
});

describe('SemVer (generic and crates.io)', () => {
  test('compareSemver is lenient on shape, isValid is strict', () => {
    assert.equal(compareSemver('1.2', 'v1.2.0+build'), 0);
    assert.equal(compareSemver('1.0.0-alpha.10', '1.0.0-alpha.9'), 1);
    assert.equal(compareSemver('garbage', '0.0.0'), -1);
    valid('crates.io', ['1.0.0-alpha+001'], ['v1.0.0', '1.0', '1.0.0-01']);
  });
});

describe('Maven', () => {
  test('qualifier order, aliases, separators and trailing zeros', () => {
    const order = [
      '1-alpha-1',
      '1-beta-1',
      '1-milestone-1',
      '1-rc-1',
      '1-SNAPSHOT',
      '1',
      '1-sp-1',
      '1-xyz',
      '1-1',
    ];
    ascending('Maven', [...order, '1.1']);
    equal('Maven', '1cr', '1-RC');
    equal('Maven', '1.0.0-final', '1');
    equal('Maven', '1a1', '1-alpha-1');
  });
});

describe('RubyGems', () => {
  test('letters make prereleases; trailing zeros ignored', () => {
    ascending('RubyGems', ['1.0.a', '1.0.b1', '1.0.rc1', '1.0', '1.0.1']);
    equal('RubyGems', '1.0.0', '1');
    equal('RubyGems', '1.0-1', '1.0.pre.1');
    valid('RubyGems', ['1.0.a', '2.0-beta.1'], ['1.0 beta', '-1']);
  });
});

describe('NuGet', () => {
  test('four parts, case-insensitive prerelease, metadata ignored', () => {
    ascending('NuGet', ['1.0.0-alpha', '1.0.0-BETA', '1.0.0-beta.2', '1.0.0', '1.0.0.1']);
    equal('NuGet', '1.0.0-RC.1+abc', '1.0.0-rc.1');
  });
});

describe('Packagist', () => {
  test('PHP version_compare special forms, Composer v prefix', () => {
    ascending('Packagist', ['1.0-dev', '1.0alpha1', '1.0b1', '1.0RC1', '1.0', '1.0.1', '1.0pl1']);
    equal('Packagist', 'v1.0.0', '1.0.0');
  });
});
