/**
 * Acceptance: osv.dev's recorded answers (via osv-scanner's test cassettes) joined with the
 * records saved beside them. Every row's expectation must hold for `affects`, and for the whole
 * pipeline (`matchPackages` over ALL saved records, the finding naming the row's id).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Package } from '../inventory/types.js';
import { sharedDataOrSkip } from '../testing/shared-data.js';
import { OsvRecordSchema } from '../vulndb/osv.js';
import type { OsvRecord } from '../vulndb/osv.js';
import { affects } from './affects.js';
import { matchPackages } from './match-packages.js';

interface Row {
  ecosystem: string;
  name: string;
  version: string;
  record: string;
  id: string;
  expected_affected: boolean;
  note?: string;
}

/**
 * The one SKEW row: PYSEC-2021-108 (urllib3, fixed 1.26.5, introduced 0) lists 1.24.3 in its
 * saved `versions` and its range covers it, so by the saved record 1.24.3 IS affected. osv.dev
 * answered the cassette's query with a newer revision of the record that no longer listed it.
 * We evaluate the record we have, so we assert the current behaviour (affected) — if this
 * changes, the evaluation changed, and this test says so.
 */
const SKEW_CURRENT_BEHAVIOUR: Record<string, boolean> = { 'PYSEC-2021-108 urllib3 1.24.3': true };

function load(dir: string): { rows: Row[]; records: Map<string, OsvRecord> } {
  const lines = readFileSync(join(dir, 'acceptance', 'joined-with-saved-records.jsonl'), 'utf8').split('\n');
  const rows = lines.filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as Row);
  const records = new Map<string, OsvRecord>();
  for (const row of rows) {
    if (!records.has(row.record)) {
      records.set(row.record, OsvRecordSchema.parse(JSON.parse(readFileSync(join(dir, row.record), 'utf8'))));
    }
  }
  return { rows, records };
}

function expectation(row: Row): boolean {
  if (!row.note?.startsWith('SKEW')) return row.expected_affected;
  const key = `${row.id} ${row.name} ${row.version}`;
  const current = SKEW_CURRENT_BEHAVIOUR[key];
  assert.notEqual(current, undefined, `unexplained SKEW row ${key}: ${row.note}`);
  return current as boolean;
}

describe('acceptance: joined-with-saved-records.jsonl', () => {
  it('affects() agrees with osv.dev on every row (SKEW rows: documented current behaviour)', (t) => {
    const dir = sharedDataOrSkip(t);
    if (!dir) return;
    const { rows, records } = load(dir);
    assert.ok(rows.length >= 90, `only ${rows.length} rows`);
    const failures: string[] = [];
    let skew = 0;
    for (const row of rows) {
      const record = records.get(row.record) as OsvRecord;
      assert.equal(record.id, row.id);
      if (row.note?.startsWith('SKEW')) skew++;
      const want = expectation(row);
      const got = affects(record, {
        ecosystem: row.ecosystem,
        name: row.name,
        version: row.version,
      }).affected;
      if (got !== want)
        failures.push(`${row.ecosystem} ${row.name}@${row.version} × ${row.id}: got ${got}, want ${want}`);
    }
    assert.deepEqual(failures, []);
    assert.equal(skew, 1, 'the data has exactly one SKEW row; a new one needs an explanation here');
    // The SKEW row really does differ from osv.dev's answer (otherwise it is no longer skew).
    const skewRow = rows.find((r) => r.note?.startsWith('SKEW')) as Row;
    assert.notEqual(expectation(skewRow), skewRow.expected_affected);
  });

  it('matchPackages() over all saved records reports each expected id for its package', (t) => {
    const dir = sharedDataOrSkip(t);
    if (!dir) return;
    const { rows } = load(dir);
    const all: OsvRecord[] = [];
    for (const sub of readdirSync(join(dir, 'osv'), { withFileTypes: true })) {
      if (!sub.isDirectory()) continue;
      for (const file of readdirSync(join(dir, 'osv', sub.name)).filter((f) => f.endsWith('.json'))) {
        all.push(OsvRecordSchema.parse(JSON.parse(readFileSync(join(dir, 'osv', sub.name, file), 'utf8'))));
      }
    }
    assert.ok(all.length > 100, `only ${all.length} records loaded`);
    for (const row of rows) {
      const pkg: Package = {
        ecosystem: row.ecosystem,
        name: row.name,
        version: row.version,
        location: '/acceptance',
        extractor: 'test',
      };
      const findings = matchPackages([pkg], all);
      const reported = findings.some((f) => f.id === row.id || f.aliases.includes(row.id));
      assert.equal(reported, expectation(row), `${row.ecosystem} ${row.name}@${row.version} × ${row.id}`);
    }
  });
});
