import assert from 'node:assert/strict';
import { test } from 'node:test';
import { baseEcosystem, candidateEcosystems, normalizePackageName } from './package-key.js';

test('base ecosystem is the part before the first colon', () => {
  assert.equal(baseEcosystem('Ubuntu:Pro:14.04:LTS'), 'Ubuntu');
  assert.equal(baseEcosystem('Packagist:https://packages.drupal.org/8'), 'Packagist');
  assert.equal(baseEcosystem('npm'), 'npm');
  assert.deepEqual(candidateEcosystems('Debian:9'), ['Debian:9', 'Debian']);
  assert.deepEqual(candidateEcosystems('Go'), ['Go', 'Go']);
});

test('PEP 503 normalisation applies to PyPI names only', () => {
  assert.equal(normalizePackageName('PyPI', 'Zope.Interface'), 'zope-interface');
  assert.equal(normalizePackageName('PyPI', 'a__b-._c'), 'a-b-c');
  assert.equal(normalizePackageName('PyPI', 'Django'), 'django');
  assert.equal(normalizePackageName('npm', 'Axios'), 'Axios');
  assert.equal(normalizePackageName('Maven', 'org.Apache:x_y'), 'org.Apache:x_y');
});
