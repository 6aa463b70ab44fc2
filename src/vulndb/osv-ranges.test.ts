/** Issue 12 §5: impossible OSV ranges and oversized records are refused per record, with a reason. */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { OsvRecord } from './osv.js';
import { impossibleRange } from './osv-ranges.js';
import { importFromPath } from './record-sources.js';
import { openSqliteAdvisoryStore } from './sqlite-store.js';

const scratch = mkdtempSync(join(tmpdir(), 'containment-osv-ranges-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

type Events = Array<Record<string, string>>;
function record(id: string, ecosystem: string, events: Events, type = 'ECOSYSTEM'): OsvRecord {
  return {
    id,
    modified: '2024-01-01T00:00:00Z',
    affected: [{ package: { ecosystem, name: 'pkg' }, ranges: [{ type: type as 'ECOSYSTEM', events }] }],
  };
}

describe('impossibleRange', () => {
  const refused: Array<[string, OsvRecord, RegExp]> = [
    [
      'introduced not a version',
      record('A', 'npm', [{ introduced: 'banana' }, { fixed: '1.0.0' }]),
      /introduced "banana" is not a valid version/,
    ],
    [
      'fixed before introduced',
      record('B', 'npm', [{ introduced: '2.0.0' }, { fixed: '1.0.0' }]),
      /fixed "1.0.0" is before introduced "2.0.0"/,
    ],
    [
      'last_affected before introduced',
      record('C', 'PyPI', [{ introduced: '3.0' }, { last_affected: '2.9' }]),
      /last_affected "2.9" is before/,
    ],
    [
      'negative limit',
      record('D', 'SEMVER-ish', [{ introduced: '0' }, { limit: '-1' }], 'SEMVER'),
      /limit "-1" is not a valid version/,
    ],
    [
      'invalid Debian fixed',
      record('E', 'Debian:12', [{ introduced: '0' }, { fixed: '1.0 beta' }]),
      /fixed "1.0 beta"/,
    ],
    ['no introduced', record('F', 'npm', [{ fixed: '1.0.0' }]), /no introduced event/],
    ['empty version', record('G', 'Go', [{ introduced: '' }]), /introduced "" is not a valid version/],
  ];
  for (const [name, r, reason] of refused) {
    test(`refused: ${name}`, () => assert.match(impossibleRange(r) ?? '', reason));
  }
  const accepted: Array<[string, OsvRecord]> = [
    ['introduced 0', record('H', 'npm', [{ introduced: '0' }, { fixed: '1.2.3' }])],
    [
      'two branches',
      record('I', 'PyPI', [{ introduced: '1.0' }, { fixed: '1.5' }, { introduced: '2.0' }, { fixed: '2.1' }]),
    ],
    ['events out of order', record('J', 'Debian:12', [{ fixed: '1.2-3' }, { introduced: '1.0-1' }])],
    ['limit *', record('K', 'npm', [{ introduced: '0' }, { limit: '*' }])],
    [
      'fixed equal to introduced (empty, not impossible)',
      record('L', 'npm', [{ introduced: '1.0.0' }, { fixed: '1.0.0' }]),
    ],
    ['unknown ecosystem: not checkable', record('M', 'Nonesuch', [{ introduced: 'x' }, { fixed: 'y' }])],
    ['GIT range: commits', record('N', 'npm', [{ introduced: 'abc' }, { fixed: 'def' }], 'GIT')],
  ];
  for (const [name, r] of accepted) {
    test(`accepted: ${name}`, () => assert.equal(impossibleRange(r), undefined));
  }
});

describe('import refuses per record', { timeout: 120_000 }, () => {
  test('an impossible range and a 100 MB details are refused with reasons; the good record is imported', async () => {
    const dir = join(scratch, 'records');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'good.json'),
      JSON.stringify(record('GOOD-1', 'npm', [{ introduced: '0' }, { fixed: '1.0.0' }])),
    );
    writeFileSync(
      join(dir, 'swapped.json'),
      JSON.stringify(record('BAD-1', 'npm', [{ introduced: '2.0.0' }, { fixed: '1.0.0' }])),
    );
    // 100 MB of details, written in pieces (never held here either).
    const fd = openSync(join(dir, 'huge.json'), 'w');
    writeSync(fd, '{"id":"HUGE-1","modified":"2024-01-01T00:00:00Z","details":"');
    const piece = Buffer.alloc(1024 * 1024, 0x61);
    for (let i = 0; i < 100; i++) writeSync(fd, piece);
    writeSync(fd, '"}');
    closeSync(fd);

    const store = openSqliteAdvisoryStore(join(scratch, 'db.sqlite'), { create: true });
    try {
      const before = process.memoryUsage().rss;
      const report = await importFromPath(store, dir);
      const grown = process.memoryUsage().rss - before;
      assert.deepEqual(report.addedIds, ['GOOD-1']);
      assert.equal(report.invalid, 2);
      const reasons = Object.fromEntries(
        report.invalidRecords.map((r) => [r.origin.split('/').at(-1), r.reason]),
      );
      assert.match(
        reasons['swapped.json'] ?? '',
        /^BAD-1: affected\[0\]\.ranges\[0\] \(ECOSYSTEM, npm\): fixed "1\.0\.0" is before introduced "2\.0\.0"/,
      );
      assert.match(reasons['huge.json'] ?? '', /over the 16777216-byte record limit; not read/);
      // Parsing it would cost hundreds of MB; skipping it costs nothing (generous margin for GC noise).
      assert.ok(grown < 150 * 1024 * 1024, `RSS grew by ${grown} bytes`);
    } finally {
      store.close();
    }
  });
});
