import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sharedDataOrSkip } from '../testing/shared-data.js';
import { OsvRecordSchema } from '../vulndb/osv.js';
import type { OsvAffected, OsvRecord } from '../vulndb/osv.js';
import { cvssBaseScore, ratingForScore, severityOf } from './severity.js';

const base = (extra: Partial<OsvRecord> = {}): OsvRecord => ({
  id: 'TEST-1',
  modified: '2024-01-01T00:00:00Z',
  ...extra,
});

describe('cvssBaseScore', () => {
  // Published examples: FIRST's v3.1 specification/calculator and the v4.0 calculator.
  const examples: [string, number][] = [
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
    ['CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N', 6.4],
    ['CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1],
    ['CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N', 5.9],
    ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 9.3],
    ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N', 6.9],
    ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N', 8.7],
    ['CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 8.5],
    ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H', 10],
  ];
  for (const [vector, score] of examples) {
    it(`${vector} = ${score}`, () => assert.equal(cvssBaseScore(vector)?.score, score));
  }

  it('ignores v4 threat metrics: the base score (CVSS-B) of E:U is still 9.3', () => {
    assert.equal(
      cvssBaseScore('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U')?.score,
      9.3,
    );
  });

  it('ignores v3 temporal metrics', () => {
    assert.equal(cvssBaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:U')?.score, 9.8);
  });

  it('rejects malformed and incomplete vectors instead of scoring them 0', () => {
    for (const bad of [
      'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H', // A missing
      'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q', // bad value
      'CVSS:3.1/AV:N/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', // duplicate
      'CVSS:4.0/AV:N/AC:L/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', // AT missing
      'CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P',
      'AV:N/AC:L/Au:N/C:P/I:P/A:P',
      'garbage',
      '',
    ]) {
      assert.equal(cvssBaseScore(bad), undefined, bad);
    }
  });
});

describe('ratingForScore', () => {
  const bands: [number, string][] = [
    [0, 'LOW'], // "None" in CVSS; kept visible as LOW
    [0.1, 'LOW'],
    [3.9, 'LOW'],
    [4.0, 'MEDIUM'],
    [6.9, 'MEDIUM'],
    [7.0, 'HIGH'],
    [8.9, 'HIGH'],
    [9.0, 'CRITICAL'],
    [10, 'CRITICAL'],
  ];
  for (const [score, rating] of bands)
    it(`${score} → ${rating}`, () => assert.equal(ratingForScore(score), rating));
});

describe('severityOf', () => {
  const v3 = { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N' }; // 6.4
  const v4 = { type: 'CVSS_V4', score: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N' }; // 9.3

  it('computes the severity from a v3 vector', () => {
    assert.deepEqual(severityOf(base({ severity: [v3] })), {
      severity: 'MEDIUM',
      score: 6.4,
      source: 'CVSS_V3',
    });
  });

  it('uses a v4 vector when it is the only one', () => {
    assert.deepEqual(severityOf(base({ severity: [v4] })), {
      severity: 'CRITICAL',
      score: 9.3,
      source: 'CVSS_V4',
    });
  });

  it('prefers v3 over v4 when both are given (see severity.ts)', () => {
    assert.equal(severityOf(base({ severity: [v4, v3] })).source, 'CVSS_V3');
  });

  it('takes the highest of several vectors of one version', () => {
    const critical = { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' };
    assert.equal(severityOf(base({ severity: [v3, critical] })).score, 9.8);
  });

  it('lets the affected entry override the record-level severity', () => {
    const entry: OsvAffected = { package: { ecosystem: 'npm', name: 'x' }, severity: [v4] };
    assert.equal(severityOf(base({ severity: [v3], affected: [entry] }), entry).score, 9.3);
    assert.equal(severityOf(base({ severity: [v3], affected: [entry] })).score, 6.4);
  });

  it('falls back to a vector-less rating: GHSA MODERATE → MEDIUM', () => {
    assert.deepEqual(severityOf(base({ database_specific: { severity: 'MODERATE' } })), {
      severity: 'MEDIUM',
      source: 'database_specific',
    });
    // ... but a vector wins over the database's word.
    assert.equal(
      severityOf(base({ severity: [v4], database_specific: { severity: 'LOW' } })).severity,
      'CRITICAL',
    );
  });

  it('reads Ubuntu priorities and Debian urgencies', () => {
    assert.deepEqual(severityOf(base({ severity: [{ type: 'Ubuntu', score: 'negligible' }] })), {
      severity: 'LOW',
      source: 'Ubuntu',
    });
    const urgent: OsvAffected = {
      package: { ecosystem: 'Debian:12', name: 'x' },
      ecosystem_specific: { urgency: 'high' },
    };
    assert.equal(severityOf(base({ affected: [urgent] }), urgent).severity, 'HIGH');
    const unassigned: OsvAffected = { ...urgent, ecosystem_specific: { urgency: 'not yet assigned' } };
    assert.deepEqual(severityOf(base({ affected: [unassigned] }), unassigned), { severity: 'UNKNOWN' });
  });

  it('rates a USN by its worst CVE in cves_map', () => {
    const entry: OsvAffected = {
      package: { ecosystem: 'Ubuntu:22.04:LTS', name: 'curl' },
      database_specific: {
        cves_map: {
          cves: [
            { id: 'CVE-A', severity: [{ type: 'Ubuntu', score: 'low' }] },
            { id: 'CVE-B', severity: [{ type: 'Ubuntu', score: 'high' }] },
            { id: 'CVE-C', severity: [{ type: 'Ubuntu', score: 'medium' }] },
          ],
        },
      },
    };
    assert.deepEqual(severityOf(base({ affected: [entry] }), entry), { severity: 'HIGH', source: 'Ubuntu' });
  });

  it('is UNKNOWN without any evidence', () => {
    assert.deepEqual(severityOf(base()), { severity: 'UNKNOWN' });
  });

  it("agrees with every saved GHSA record's own rating", (t) => {
    const dir = sharedDataOrSkip(t);
    if (!dir) return;
    const words: Record<string, string> = {
      LOW: 'LOW',
      MODERATE: 'MEDIUM',
      HIGH: 'HIGH',
      CRITICAL: 'CRITICAL',
    };
    let checked = 0;
    for (const sub of readdirSync(join(dir, 'osv'))) {
      if (sub.endsWith('.tsv')) continue;
      for (const file of readdirSync(join(dir, 'osv', sub)).filter((f) => f.startsWith('GHSA-'))) {
        const record = OsvRecordSchema.parse(JSON.parse(readFileSync(join(dir, 'osv', sub, file), 'utf8')));
        const own = record.database_specific?.severity as string;
        const got = severityOf(record, record.affected?.[0]);
        assert.equal(got.severity, words[own], `${file}: ${JSON.stringify(got)} vs ${own}`);
        checked++;
      }
    }
    assert.ok(checked >= 20, `only ${checked} GHSA records found`);
  });

  it('rates every saved USN from its cves_map', (t) => {
    const dir = sharedDataOrSkip(t);
    if (!dir) return;
    for (const file of readdirSync(join(dir, 'osv', 'ubuntu')).filter((f) => f.endsWith('.json'))) {
      const record = OsvRecordSchema.parse(
        JSON.parse(readFileSync(join(dir, 'osv', 'ubuntu', file), 'utf8')),
      );
      for (const entry of record.affected ?? []) {
        const cves = (entry.database_specific?.cves_map as { cves?: { severity?: unknown[] }[] } | undefined)
          ?.cves;
        const hasRating = (cves ?? []).some((c) => (c.severity ?? []).length > 0);
        const got = severityOf(record, entry);
        // Rated exactly when Canonical gave a rating for one of its CVEs.
        assert.equal(got.severity !== 'UNKNOWN', hasRating, `${file} ${entry.package?.ecosystem}`);
      }
    }
  });
});
