/**
 * Validation against upstream's own Pod Security fixtures: for the latest version directory of each
 * level in k8s.io/pod-security-admission v0.36.x, every `pass` pod passes and every `fail` pod fails
 * that level. Fixtures are read from the Go module cache (fetched with `go mod download`).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import yaml from 'js-yaml';
import { fetchPsaTestdata, findPsaTestdata } from '../../scripts/k8s/psa-testdata.js';
import type { PsaTestdata } from '../../scripts/k8s/psa-testdata.js';
import { hasCommand } from '../testing/tools.js';
import { requireOrSkip } from '../testing/shared-data.js';
import { checkPodSecurity } from './pod-security.js';

function testdata(): PsaTestdata | undefined {
  if (!hasCommand('go')) return undefined;
  try {
    return findPsaTestdata() ?? fetchPsaTestdata();
  } catch (err) {
    console.warn(`psa testdata: ${(err as Error).message}`);
    return undefined;
  }
}

function pods(
  dir: string,
): { file: string; pod: { metadata?: { annotations?: Record<string, string> }; spec: unknown } }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((file) => ({ file, pod: yaml.load(readFileSync(join(dir, file), 'utf8')) as { spec: unknown } }));
}

const data = testdata();

for (const level of ['baseline', 'restricted'] as const) {
  test(`upstream ${level} fixtures: every pass pod passes, every fail pod fails`, (t) => {
    if (!requireOrSkip(t, data !== undefined, `Go and the ${'k8s.io/pod-security-admission'} v0.36 module`))
      return;
    const dir = data!.latest[level];
    const passing = pods(join(dir, 'pass'));
    const failing = pods(join(dir, 'fail'));
    // Guards against an empty or moved fixture tree silently passing.
    assert.ok(passing.length >= 10, `${passing.length} pass fixtures in ${dir}`);
    assert.ok(failing.length >= 30, `${failing.length} fail fixtures in ${dir}`);
    const wronglyFailed = passing
      .map(({ file, pod }) => ({ file, v: checkPodSecurity(level, pod) }))
      .filter((r) => r.v.length > 0)
      .map((r) => `${r.file}: ${r.v.map((v) => v.message).join('; ')}`);
    const wronglyPassed = failing
      .filter(({ pod }) => checkPodSecurity(level, pod).length === 0)
      .map((r) => r.file);
    assert.deepEqual(wronglyFailed, [], `pass fixtures refused (${data!.version} ${dir})`);
    assert.deepEqual(wronglyPassed, [], `fail fixtures accepted (${data!.version} ${dir})`);
    // The fixtures are named after the check they exercise; the control we report should match.
    for (const { file, pod } of failing) {
      const check = file.replace(/\d+\.yaml$/, '').toLowerCase();
      const controls = checkPodSecurity(level, pod).map((v) => v.control.replace(/^PSS-/, '').toLowerCase());
      const expected = level === 'restricted' ? restrictedOverride(check) : check;
      assert.ok(
        controls.includes(expected),
        `${file}: expected control ${expected}, got ${controls.join(', ')}`,
      );
    }
  });
}

/** In restricted, some baseline fixtures fail through the restricted check that replaces them. */
function restrictedOverride(check: string): string {
  switch (check) {
    case 'capabilities_baseline':
      return 'capabilities_restricted';
    case 'seccompprofile_baseline':
      return 'seccompprofile_restricted';
    case 'hostpathvolumes':
      return 'restrictedvolumes';
    case 'procmount':
      return 'procmount_restricted';
    default:
      return check;
  }
}

test('privileged level allows the upstream fail fixtures', (t) => {
  if (!requireOrSkip(t, data !== undefined, 'the k8s.io/pod-security-admission v0.36 module')) return;
  for (const { pod } of pods(join(data!.latest.restricted, 'fail')))
    assert.deepEqual(checkPodSecurity('privileged', pod), []);
});
