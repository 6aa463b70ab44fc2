import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContainmentError } from '../errors.js';
import type { InsecureConfiguration, Severity } from '../inventory/types.js';
import { summarize } from './summary.js';
import { DEFAULT_THRESHOLDS } from './types.js';
import type { VulnerabilityFinding } from './types.js';

function findings(severity: Severity, n: number): VulnerabilityFinding[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `CVE-${severity}-${i}`,
    aliases: [],
    severity,
    package: { name: `p${i}`, version: '1', ecosystem: 'npm', location: '/' },
  }));
}

function configs(severity: Severity, n: number): InsecureConfiguration[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `cfg-${i}`,
    severity,
    title: 't',
    evidence: ['/etc/x'],
  }));
}

describe('summarize', () => {
  it('counts vulnerabilities and insecure configurations separately', () => {
    const s = summarize([...findings('HIGH', 2), ...findings('UNKNOWN', 1)], configs('CRITICAL', 1));
    assert.deepEqual(s.counts, { CRITICAL: 0, HIGH: 2, MEDIUM: 0, LOW: 0, UNKNOWN: 1 });
    assert.deepEqual(s.configurationCounts, { CRITICAL: 1, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 });
  });

  it('scores risk as the capped sum of weights (10/5/2/1/1)', () => {
    assert.equal(summarize([], []).riskScore, 0);
    const mixed = [
      ...findings('CRITICAL', 1),
      ...findings('HIGH', 2),
      ...findings('MEDIUM', 3),
      ...findings('LOW', 4),
    ];
    assert.equal(summarize(mixed, configs('UNKNOWN', 1)).riskScore, 10 + 10 + 6 + 4 + 1);
    assert.equal(summarize(findings('HIGH', 19), configs('CRITICAL', 1)).riskScore, 100);
    assert.equal(summarize(findings('CRITICAL', 50), []).riskScore, 100);
  });

  it('passes at each default threshold and fails one above it', () => {
    const at = [...findings('HIGH', 5), ...findings('MEDIUM', 20), ...findings('LOW', 50)];
    const ok = summarize(at, []);
    assert.deepEqual(ok.compliance, {
      passed: true,
      verdict: 'pass',
      thresholds: DEFAULT_THRESHOLDS,
      violations: [],
    });

    const above = summarize([...at, ...findings('HIGH', 1), ...findings('LOW', 1)], []);
    assert.equal(above.compliance.passed, false);
    assert.deepEqual(above.compliance.violations, [
      'HIGH: 6 exceeds the threshold of 5 (6 vulnerabilities, 0 insecure configurations)',
      'LOW: 51 exceeds the threshold of 50 (51 vulnerabilities, 0 insecure configurations)',
    ]);
  });

  it('fails on a single critical by default', () => {
    const s = summarize(findings('CRITICAL', 1), []);
    assert.equal(s.compliance.passed, false);
    assert.equal(s.compliance.violations.length, 1);
    assert.match(s.compliance.violations[0] ?? '', /^CRITICAL: 1 exceeds the threshold of 0/);
  });

  it('counts insecure configurations toward thresholds by their severity', () => {
    const s = summarize(findings('HIGH', 4), configs('HIGH', 2));
    assert.deepEqual(s.compliance.violations, [
      'HIGH: 6 exceeds the threshold of 5 (4 vulnerabilities, 2 insecure configurations)',
    ]);
  });

  it('never fails on UNKNOWN', () => {
    assert.equal(summarize(findings('UNKNOWN', 500), configs('UNKNOWN', 5)).compliance.passed, true);
  });

  it('merges partial thresholds with the defaults and accepts Infinity', () => {
    const s = summarize(findings('CRITICAL', 3), [], { CRITICAL: 3 });
    assert.equal(s.compliance.passed, true);
    assert.deepEqual(s.compliance.thresholds, { ...DEFAULT_THRESHOLDS, CRITICAL: 3 });
    assert.equal(summarize(findings('LOW', 1000), [], { LOW: Infinity }).compliance.passed, true);
    assert.equal(summarize(findings('HIGH', 1), [], { HIGH: 0 }).compliance.passed, false);
  });

  it('rejects negative or non-numeric thresholds with CONFIG_INVALID', () => {
    for (const bad of [{ HIGH: -1 }, { LOW: Number.NaN }, { MEDIUM: '3' as unknown as number }]) {
      assert.throws(
        () => summarize([], [], bad),
        (e: unknown) => e instanceof ContainmentError && e.code === 'CONFIG_INVALID',
      );
    }
  });
});
