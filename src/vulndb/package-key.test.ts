import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  baseEcosystem,
  candidateEcosystems,
  normalizePackageName,
  rhelStreamFamily,
  sameRhelRelease,
} from './package-key.js';

test('base ecosystem is the part before the first colon', () => {
  assert.equal(baseEcosystem('Ubuntu:Pro:14.04:LTS'), 'Ubuntu');
  assert.equal(baseEcosystem('Packagist:https://packages.drupal.org/8'), 'Packagist');
  assert.equal(baseEcosystem('npm'), 'npm');
  const plain = (exact: string, base: string) => ({
    exact,
    base,
    release: exact,
    rangeFrom: '',
    rangeTo: '',
  });
  assert.deepEqual(candidateEcosystems('Debian:9'), plain('Debian:9', 'Debian'));
  assert.deepEqual(candidateEcosystems('Go'), plain('Go', 'Go'));
  // Red Hat products other than enterprise_linux keep exact matching.
  assert.deepEqual(
    candidateEcosystems('Red Hat:rhel_eus:9.4::baseos'),
    plain('Red Hat:rhel_eus:9.4::baseos', 'Red Hat'),
  );
});

test('an RHEL inventory ecosystem widens to every stream of its product and major release', () => {
  const c = candidateEcosystems('Red Hat:enterprise_linux:9::baseos');
  assert.deepEqual(c, {
    exact: 'Red Hat:enterprise_linux:9::baseos',
    base: 'Red Hat',
    release: 'Red Hat:enterprise_linux:9',
    rangeFrom: 'Red Hat:enterprise_linux:9::',
    rangeTo: 'Red Hat:enterprise_linux:9:;',
  });
  // The store's byte-order range, checked the way the stores compare (code units = bytes here).
  const inRange = (e: string) => e >= c.rangeFrom && e < c.rangeTo;
  for (const e of ['appstream', 'baseos', 'crb', 'nfv', 'realtime', 'sap_hana', 'highavailability']) {
    assert.ok(inRange(`Red Hat:enterprise_linux:9::${e}`), e);
  }
  for (const e of [
    'Red Hat:enterprise_linux:8::appstream',
    'Red Hat:enterprise_linux:90::appstream',
    'Red Hat:enterprise_linux:9.4::appstream',
    'Red Hat:enterprise_linux:9',
    'Red Hat:rhel_eus:9.4::appstream',
    'Red Hat:rhel_aus:9.2::appstream',
    'Red Hat:enterprise_linux_eus:9.4::appstream',
    'Rocky Linux:9',
  ]) {
    assert.ok(!inRange(e), e);
  }
});

test('rhelStreamFamily recognises enterprise_linux with a bare major only', () => {
  assert.deepEqual(rhelStreamFamily('Red Hat:enterprise_linux:9::appstream'), {
    release: 'Red Hat:enterprise_linux:9',
    streamPrefix: 'Red Hat:enterprise_linux:9::',
  });
  assert.equal(rhelStreamFamily('Red Hat:enterprise_linux:10')?.release, 'Red Hat:enterprise_linux:10');
  for (const e of [
    'Red Hat',
    'Red Hat:enterprise_linux',
    'Red Hat:enterprise_linux:9::',
    'Red Hat:enterprise_linux:9.4::baseos',
    'Red Hat:rhel_eus:9.4::baseos',
    'Red Hat:rhel_aus:8.6::appstream',
    'Red Hat:openshift:4.14::el9',
    'Rocky Linux:9',
    'red hat:enterprise_linux:9::baseos',
  ]) {
    assert.equal(rhelStreamFamily(e), undefined, e);
  }
});

test('sameRhelRelease: any stream of the same major, nothing else', () => {
  const pkg = 'Red Hat:enterprise_linux:9::baseos';
  assert.ok(sameRhelRelease('Red Hat:enterprise_linux:9::appstream', pkg));
  assert.ok(sameRhelRelease('Red Hat:enterprise_linux:9::crb', pkg));
  assert.ok(sameRhelRelease('Red Hat:enterprise_linux:9', pkg));
  assert.ok(!sameRhelRelease('Red Hat:enterprise_linux:8::appstream', pkg));
  assert.ok(!sameRhelRelease('Red Hat:enterprise_linux:90::appstream', pkg));
  assert.ok(!sameRhelRelease('Red Hat:rhel_eus:9.2::appstream', pkg));
  assert.ok(!sameRhelRelease('Red Hat:rhel_aus:9.2::appstream', pkg));
  assert.ok(!sameRhelRelease('Red Hat:rhel_eus:9.2::appstream', 'Red Hat:rhel_eus:9.2::baseos'));
  assert.ok(!sameRhelRelease('Red Hat:enterprise_linux:9::appstream', 'Rocky Linux:9'));
});

test('PEP 503 normalisation applies to PyPI names only', () => {
  assert.equal(normalizePackageName('PyPI', 'Zope.Interface'), 'zope-interface');
  assert.equal(normalizePackageName('PyPI', 'a__b-._c'), 'a-b-c');
  assert.equal(normalizePackageName('PyPI', 'Django'), 'django');
  assert.equal(normalizePackageName('npm', 'Axios'), 'Axios');
  assert.equal(normalizePackageName('Maven', 'org.Apache:x_y'), 'org.Apache:x_y');
});
