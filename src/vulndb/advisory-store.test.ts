/**
 * The behaviour every AdvisoryStore engine shares, run against each engine (SQLite always,
 * PostgreSQL when reachable; see store-factories.test-helper.ts). Engine-specific opening and
 * concurrency tests are in sqlite-store.test.ts and postgres-store.test.ts.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireOrSkip, sharedDataOrSkip } from '../testing/shared-data.js';
import type { AsyncAdvisoryStore, ImportItem, ImportReport } from './advisory-store.js';
import type { OsvRecord } from './osv.js';
import { openRecordSource } from './record-sources.js';
import {
  ALL_RHEL_RECORDS,
  APPSTREAM_9,
  RHEL9_INVENTORY_ECOSYSTEM,
  RHEL9_NODEJS_IDS,
} from './rhel-stream-records.test-helper.js';
import { storeFactories } from './store-factories.test-helper.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const withdrawnFixture = join(fixtures, 'withdrawn-TEST-WITHDRAWN-0001.json');

const engines = await storeFactories('vulndb');
let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'containment-vulndb-'));
});
after(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await engines.cleanup();
});

/** `importFromPath` for any engine (that one is typed for the synchronous store). */
async function importPath(
  store: AsyncAdvisoryStore,
  path: string,
  options: { onProgress?: (progress: { processed: number }) => void } = {},
): Promise<ImportReport> {
  const source = await openRecordSource(path);
  const { onProgress } = options;
  return store.importRecords(source.items, {
    source: path,
    onProgress: onProgress && ((processed) => onProgress({ processed })),
  });
}

/** An independent oracle: every *.json under a directory, parsed without the store. */
function readOsvDir(dir: string): { files: number; records: Map<string, OsvRecord> } {
  const records = new Map<string, OsvRecord>();
  let files = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.json')) continue;
    files++;
    const record = JSON.parse(readFileSync(join(entry.parentPath, entry.name), 'utf8')) as OsvRecord;
    records.set(record.id, record);
  }
  return { files, records };
}

function idsNaming(records: Iterable<OsvRecord>, ecosystem: string, name: string): string[] {
  return [...records]
    .filter((r) => r.affected?.some((a) => a.package?.ecosystem === ecosystem && a.package.name === name))
    .map((r) => r.id)
    .sort();
}

function record(id: string, ecosystem: string, name: string, extra: Partial<OsvRecord> = {}): OsvRecord {
  return {
    id,
    modified: '2024-01-01T00:00:00Z',
    affected: [
      { package: { ecosystem, name }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }] },
    ],
    ...extra,
  };
}

const items = (...records: unknown[]): ImportItem[] =>
  records.map((r, i) => ({ record: r, origin: `item-${i}` }));
const ids = (records: OsvRecord[]) => records.map((r) => r.id).sort();

for (const factory of engines.factories) {
  describe(`advisory store on ${factory.name}`, () => {
    /** A test that needs this engine: skipped loudly when it is missing, failed under CI. */
    const it = (name: string, fn: (t: TestContext) => Promise<void>) =>
      test(name, async (t) => {
        if (requireOrSkip(t, factory.available, factory.what)) await fn(t);
      });

    describe('importing the shared OSV records', () => {
      let store: AsyncAdvisoryStore;
      let osvDir: string;
      let oracle: ReturnType<typeof readOsvDir>;
      after(async () => {
        await store?.close();
      });

      it('first import adds every distinct record; repeated ids are duplicates', async (t) => {
        const shared = sharedDataOrSkip(t);
        if (shared === undefined) return;
        osvDir = join(shared, 'osv');
        oracle = readOsvDir(osvDir);
        store = await factory.open();
        const progress: number[] = [];
        const report = await importPath(store, osvDir, { onProgress: (p) => progress.push(p.processed) });
        assert.equal(report.invalid, 0, JSON.stringify(report.invalidRecords));
        assert.equal(report.added, oracle.records.size);
        assert.deepEqual([...report.addedIds].sort(), [...oracle.records.keys()].sort());
        assert.equal(report.duplicate, oracle.files - oracle.records.size);
        assert.ok(report.duplicate > 0, 'the shared data repeats some PYSEC records under other-GIT/');
        assert.equal(report.changed + report.unchanged + report.withdrawn, 0);
        assert.deepEqual(await store.count(), { records: oracle.records.size, withdrawn: 0 });
        assert.equal(progress.at(-1), oracle.files);
        assert.equal((await store.lastImport())?.importId, report.importId);
        assert.equal((await store.lastImport())?.source, osvDir);
      });

      it('osv.dev test fixtures: an empty `affected` is stored but matches nothing; old DSA format imports', async (t) => {
        if (store === undefined) return t.skip('needs the shared import');
        const empty = await store.get('DLA-3623-1');
        assert.deepEqual(empty?.affected, []);
        assert.ok((empty?.upstream?.length ?? 0) > 0, 'stored record keeps its fields');
        assert.deepEqual(ids(await store.lookup('Debian:7', 'nginx')), ['DSA-3029-1']);
      });

      it('a stored record round-trips, unknown fields included', async (t) => {
        if (store === undefined) return t.skip('needs the shared import');
        for (const id of ['GHSA-8hc4-vh64-cxmj', 'USN-7604-1', 'DRUPAL-CONTRIB-2025-083']) {
          assert.deepEqual(await store.get(id), oracle.records.get(id));
        }
        assert.equal(await store.get('NOPE-1'), undefined);
      });

      it('npm names are case-sensitive (`Axios` is not `axios`)', async (t) => {
        if (store === undefined) return t.skip('needs the shared import');
        const records = oracle.records.values();
        const upper = idsNaming(oracle.records.values(), 'npm', 'Axios');
        const lower = idsNaming(records, 'npm', 'axios');
        assert.ok(upper.length > 0 && lower.length > 0);
        assert.deepEqual(ids(await store.lookup('npm', 'Axios')), upper);
        assert.deepEqual(ids(await store.lookup('npm', 'axios')), lower);
        assert.deepEqual(await store.lookup('npm', 'AXIOS'), []);
      });

      it('PyPI names are PEP 503-normalised on both sides (Jinja2 = jinja2, flask_cors = flask-cors)', async (t) => {
        if (store === undefined) return t.skip('needs the shared import');
        const jinja = [
          ...new Set([
            ...idsNaming(oracle.records.values(), 'PyPI', 'Jinja2'),
            ...idsNaming(oracle.records.values(), 'PyPI', 'jinja2'),
          ]),
        ].sort();
        assert.ok(
          idsNaming(oracle.records.values(), 'PyPI', 'Jinja2').length > 0,
          'shared data spells it both ways',
        );
        assert.deepEqual(ids(await store.lookup('PyPI', 'jinja2')), jinja);
        assert.deepEqual(ids(await store.lookup('PyPI', 'JINJA2')), jinja);
        const cors = idsNaming(oracle.records.values(), 'PyPI', 'flask-cors');
        assert.deepEqual(ids(await store.lookup('PyPI', 'Flask_CORS')), cors);
        assert.deepEqual(ids(await store.lookup('PyPI', 'flask.cors')), cors);
        assert.deepEqual(
          ids(await store.lookup('PyPI', 'Django')),
          idsNaming(oracle.records.values(), 'PyPI', 'django'),
        );
        // Normalisation is PyPI's alone.
        assert.deepEqual(await store.lookup('npm', 'Flask_CORS'), []);
      });

      it('Debian:9 records answer Debian:9 only', async (t) => {
        if (store === undefined) return t.skip('needs the shared import');
        const expected = idsNaming(oracle.records.values(), 'Debian:9', 'openssl');
        assert.ok(expected.includes('DLA-3008-1'));
        assert.deepEqual(ids(await store.lookup('Debian:9', 'openssl')), expected);
        assert.deepEqual(await store.lookup('Debian:10', 'openssl'), []);
        assert.deepEqual(await store.lookup('Debian', 'openssl'), []);
        assert.deepEqual(await store.lookup('Ubuntu:9', 'openssl'), []);
      });

      it('lookupMany answers each query in order', async (t) => {
        if (store === undefined) return t.skip('needs the shared import');
        const queries = [
          { ecosystem: 'Debian:9', name: 'openssl' },
          { ecosystem: 'npm', name: 'no-such-package' },
          { ecosystem: 'PyPI', name: 'Jinja2' },
          { ecosystem: 'Debian:9', name: 'openssl' },
        ];
        const answers = await store.lookupMany(queries);
        assert.equal(answers.length, queries.length);
        for (const [i, q] of queries.entries()) {
          assert.deepEqual(ids(answers[i] ?? []), ids(await store.lookup(q.ecosystem, q.name)));
        }
        assert.ok((answers[0]?.length ?? 0) > 0);
      });

      it('re-import of the same data reports only unchanged (and the same duplicates)', async (t) => {
        if (store === undefined) return t.skip('needs the shared import');
        const before = (await store.lastImport())?.importId ?? 0;
        const report = await importPath(store, osvDir);
        assert.equal(report.unchanged, oracle.records.size);
        assert.equal(report.duplicate, oracle.files - oracle.records.size);
        assert.deepEqual([report.added, report.changed, report.withdrawn, report.invalid], [0, 0, 0, 0]);
        assert.deepEqual(report.addedIds.concat(report.changedIds, report.withdrawnIds), []);
        assert.ok(report.importId > before);
        assert.deepEqual(await store.changedSince(before), []);
      });

      it('a modified copy of one record is reported as changed, with its id', async (t) => {
        if (store === undefined) return t.skip('needs the shared import');
        const dir = mkdtempSync(join(tmp, 'modified-'));
        const original = oracle.records.get('DLA-3008-1');
        assert.ok(original);
        const newer = { ...original, modified: '2030-01-01T00:00:00Z' };
        writeFileSync(join(dir, 'DLA-3008-1.json'), JSON.stringify(newer));
        // Same `modified`, different content: still a change (content hash).
        const edited = { ...oracle.records.get('DLA-3012-1'), details: 'edited locally' };
        writeFileSync(join(dir, 'DLA-3012-1.json'), JSON.stringify(edited));
        const unchangedCopy = join(dir, 'DLA-3022-1.json');
        cpSync(join(osvDir, 'debian', 'DLA-3022-1.json'), unchangedCopy);
        const before = (await store.lastImport())?.importId ?? 0;

        const report = await importPath(store, dir);
        assert.equal(report.changed, 2);
        assert.deepEqual([...report.changedIds].sort(), ['DLA-3008-1', 'DLA-3012-1']);
        assert.equal(report.unchanged, 1);
        assert.equal(report.added, 0);
        assert.equal((await store.get('DLA-3008-1'))?.modified, '2030-01-01T00:00:00Z');
        assert.equal((await store.get('DLA-3012-1'))?.details, 'edited locally');
        assert.deepEqual(await store.changedSince(before), ['DLA-3008-1', 'DLA-3012-1']);
        assert.deepEqual(ids(await store.lookup('Debian:9', 'openssl')), ['DLA-3008-1']);
      });
    });

    describe('withdrawn records', () => {
      it('the withdrawn fixture is stored, counted and never returned by lookup', async () => {
        const store = await factory.open();
        try {
          const report = await importPath(store, withdrawnFixture);
          assert.equal(report.withdrawn, 1);
          assert.deepEqual(report.withdrawnIds, ['TEST-WITHDRAWN-0001']);
          assert.equal(report.added, 0);
          assert.deepEqual(await store.lookup('PyPI', 'Jinja2'), []);
          assert.equal((await store.get('TEST-WITHDRAWN-0001'))?.withdrawn, '2024-05-02T00:00:00Z');
          assert.deepEqual(await store.count(), { records: 1, withdrawn: 1 });
          const again = await importPath(store, withdrawnFixture);
          assert.deepEqual([again.withdrawn, again.unchanged], [0, 1]);
        } finally {
          await store.close();
        }
      });

      it('withdrawing a stored record removes it from lookups; un-withdrawing restores it', async () => {
        const store = await factory.open();
        try {
          const withdrawn = JSON.parse(readFileSync(withdrawnFixture, 'utf8')) as OsvRecord;
          const { withdrawn: _, ...live } = { ...withdrawn, modified: '2024-05-01T00:00:00Z' };
          await store.importRecords(items(live));
          assert.deepEqual(ids(await store.lookup('PyPI', 'jinja2')), ['TEST-WITHDRAWN-0001']);

          const report = await store.importRecords(items(withdrawn));
          assert.deepEqual([report.withdrawn, report.changed], [1, 0]);
          assert.deepEqual(await store.lookup('PyPI', 'jinja2'), []);

          const back = await store.importRecords(items({ ...live, modified: '2024-06-01T00:00:00Z' }));
          assert.deepEqual(back.changedIds, ['TEST-WITHDRAWN-0001']);
          assert.deepEqual(ids(await store.lookup('PyPI', 'jinja2')), ['TEST-WITHDRAWN-0001']);
        } finally {
          await store.close();
        }
      });
    });

    describe('matching rules on constructed records', () => {
      it('PEP 503 runs of -_. collapse (zope.interface = zope-interface = Zope__Interface)', async () => {
        const store = await factory.open();
        try {
          await store.importRecords(items(record('TEST-ZOPE', 'PyPI', 'zope.interface')));
          for (const name of ['zope.interface', 'zope-interface', 'Zope__Interface', 'zope_.-interface']) {
            assert.deepEqual(ids(await store.lookup('PyPI', name)), ['TEST-ZOPE'], name);
          }
          assert.deepEqual(await store.lookup('PyPI', 'zopeinterface'), []);
        } finally {
          await store.close();
        }
      });

      it('an RHEL baseos inventory finds every stream of its major release, not 8, 90, EUS or AUS', async () => {
        const store = await factory.open();
        try {
          // Synthetic records in the real Red Hat OSV shape (rhel-stream-records.test-helper.ts).
          await store.importRecords(items(...ALL_RHEL_RECORDS));
          assert.deepEqual(ids(await store.lookup(RHEL9_INVENTORY_ECOSYSTEM, 'nodejs')), RHEL9_NODEJS_IDS);
          // The AppStream record names several binaries; each is indexed under its stream.
          assert.deepEqual(ids(await store.lookup(RHEL9_INVENTORY_ECOSYSTEM, 'npm')), [APPSTREAM_9.id]);
          // Batched lookups widen per query: RHEL 8 sees only its own record, EUS only EUS.
          const [nine, eight, eus, rocky] = await store.lookupMany([
            { ecosystem: RHEL9_INVENTORY_ECOSYSTEM, name: 'nodejs' },
            { ecosystem: 'Red Hat:enterprise_linux:8::baseos', name: 'nodejs' },
            { ecosystem: 'Red Hat:rhel_eus:9.2::appstream', name: 'nodejs' },
            { ecosystem: 'Rocky Linux:9', name: 'nodejs' },
          ]);
          assert.deepEqual(ids(nine ?? []), RHEL9_NODEJS_IDS);
          assert.deepEqual(ids(eight ?? []), ['RHSA-2099:0002']);
          assert.deepEqual(ids(eus ?? []), ['RHSA-2099:0003']);
          assert.deepEqual(rocky, []);
          assert.deepEqual(ids(await store.lookup('Red Hat:enterprise_linux:90::baseos', 'nodejs')), [
            'RHSA-2099:0006',
          ]);
          // A record for the whole release (no stream) and one for plain `Red Hat` apply as well.
          await store.importRecords(
            items(
              record('TEST-RHEL9', 'Red Hat:enterprise_linux:9', 'nodejs'),
              record('TEST-RH', 'Red Hat', 'nodejs'),
            ),
          );
          assert.deepEqual(ids(await store.lookup(RHEL9_INVENTORY_ECOSYSTEM, 'nodejs')), [
            ...RHEL9_NODEJS_IDS,
            'TEST-RH',
            'TEST-RHEL9',
          ]);
        } finally {
          await store.close();
        }
      });

      it('a suffix-less ecosystem record applies to every release; a release record only to its own', async () => {
        const store = await factory.open();
        try {
          await store.importRecords(
            items(record('TEST-BASE', 'Debian', 'curl'), record('TEST-D12', 'Debian:12', 'curl')),
          );
          assert.deepEqual(ids(await store.lookup('Debian:12', 'curl')), ['TEST-BASE', 'TEST-D12']);
          assert.deepEqual(ids(await store.lookup('Debian:11', 'curl')), ['TEST-BASE']);
          assert.deepEqual(ids(await store.lookup('Debian', 'curl')), ['TEST-BASE']);
          // Ecosystem names are case-sensitive.
          assert.deepEqual(await store.lookup('debian:12', 'curl'), []);
        } finally {
          await store.close();
        }
      });

      it('one record naming a package in several releases is returned once', async () => {
        const store = await factory.open();
        try {
          const multi = record('TEST-MULTI', 'Debian:12', 'curl');
          multi.affected?.push({ package: { ecosystem: 'Debian', name: 'curl' } });
          multi.affected?.push({ package: { ecosystem: 'Debian:12', name: 'curl' } });
          await store.importRecords(items(multi));
          assert.deepEqual(ids(await store.lookup('Debian:12', 'curl')), ['TEST-MULTI']);
        } finally {
          await store.close();
        }
      });
    });

    describe('invalid input and failures', () => {
      it('invalid records are reported with origin and a one-line reason; the rest is imported', async () => {
        const store = await factory.open();
        try {
          const report = await store.importRecords([
            { record: record('TEST-OK', 'npm', 'left-pad'), origin: 'good.json' },
            { record: { id: 'TEST-NO-MODIFIED' }, origin: 'no-modified.json' },
            {
              record: {
                ...record('TEST-BAD-RANGE', 'npm', 'x'),
                affected: [{ ranges: [{ type: 'NOPE', events: [] }] }],
              },
              origin: 'bad-range.json',
            },
            { record: [1, 2], origin: 'array.json' },
            {
              record: undefined,
              origin: 'broken.json',
              error: 'not valid JSON: Unexpected token }\nin JSON',
            },
          ]);
          assert.equal(report.added, 1);
          assert.equal(report.invalid, 4);
          const byOrigin = new Map(report.invalidRecords.map((r) => [r.origin, r.reason]));
          assert.match(byOrigin.get('no-modified.json') ?? '', /^TEST-NO-MODIFIED: modified: /);
          assert.match(
            byOrigin.get('bad-range.json') ?? '',
            /^TEST-BAD-RANGE: affected\.0\.ranges\.0\.type: /,
          );
          assert.ok(byOrigin.has('array.json'));
          assert.equal(byOrigin.get('broken.json'), 'not valid JSON: Unexpected token } in JSON');
          for (const reason of byOrigin.values()) assert.doesNotMatch(reason, /\n/);
          assert.deepEqual(await store.count(), { records: 1, withdrawn: 0 });
        } finally {
          await store.close();
        }
      });

      it('an import that fails midway changes nothing (one transaction)', async () => {
        const store = await factory.open();
        try {
          await store.importRecords(items(record('TEST-KEEP', 'npm', 'a')));
          async function* failing(): AsyncGenerator<ImportItem> {
            yield { record: record('TEST-NEW', 'npm', 'b'), origin: 'x' };
            yield {
              record: record('TEST-KEEP', 'npm', 'a', { modified: '2030-01-01T00:00:00Z' }),
              origin: 'y',
            };
            throw new Error('source broke');
          }
          await assert.rejects(store.importRecords(failing()), /source broke/);
          assert.deepEqual(await store.count(), { records: 1, withdrawn: 0 });
          assert.equal(await store.get('TEST-NEW'), undefined);
          assert.equal((await store.get('TEST-KEEP'))?.modified, '2024-01-01T00:00:00Z');
          assert.deepEqual(await store.lookup('npm', 'b'), []);
          // The store is usable afterwards.
          const report = await store.importRecords(items(record('TEST-NEW', 'npm', 'b')));
          assert.deepEqual(report.addedIds, ['TEST-NEW']);
        } finally {
          await store.close();
        }
      });

      it('a failed first import (the bulk path into an empty store) leaves it empty and whole', async () => {
        const store = await factory.open();
        try {
          async function* failing(): AsyncGenerator<ImportItem> {
            // More than a batch, so rows are written (and indexes set aside) before the failure.
            for (let i = 0; i < 2500; i++)
              yield { record: record(`TEST-F-${i}`, 'npm', `p${i % 7}`), origin: 'x' };
            yield { record: record('TEST-F-1', 'npm', 'changed'), origin: 'y' };
            throw new Error('source broke');
          }
          await assert.rejects(store.importRecords(failing()), /source broke/);
          assert.deepEqual(await store.count(), { records: 0, withdrawn: 0 });
          assert.equal(await store.lastImport(), undefined);
          assert.deepEqual(await store.lookup('npm', 'p1'), []);
          // Usable afterwards, with its indexes: a second import replaces index rows through them.
          await store.importRecords(items(record('TEST-F-1', 'npm', 'p1')));
          const report = await store.importRecords(items(record('TEST-F-1', 'npm', 'p2')));
          assert.deepEqual(report.changedIds, ['TEST-F-1']);
          assert.deepEqual(await store.lookup('npm', 'p1'), []);
          assert.deepEqual(ids(await store.lookup('npm', 'p2')), ['TEST-F-1']);
        } finally {
          await store.close();
        }
      });

      it('a record changed within the first import keeps only its last index rows', async () => {
        const store = await factory.open();
        try {
          const first = Array.from({ length: 1500 }, (_, i) => record(`TEST-W-${i}`, 'npm', `w${i}`));
          // Changed within the batch it was added in (TEST-W-3 below: in a later batch).
          first.splice(10, 0, record('TEST-W-7', 'npm', 'w7-moved'));
          first.push(
            record('TEST-W-3', 'npm', 'moved'),
            record('TEST-W-4', 'npm', 'w4', { withdrawn: '2024-02-01T00:00:00Z' }),
          );
          const report = await store.importRecords(items(...first));
          assert.equal(report.added, 1499);
          assert.deepEqual(await store.lookup('npm', 'w3'), []);
          assert.deepEqual(ids(await store.lookup('npm', 'moved')), ['TEST-W-3']);
          assert.deepEqual(await store.lookup('npm', 'w7'), []);
          assert.deepEqual(ids(await store.lookup('npm', 'w7-moved')), ['TEST-W-7']);
          assert.deepEqual(await store.lookup('npm', 'w4'), []);
          assert.deepEqual(await store.count(), { records: 1500, withdrawn: 1 });
        } finally {
          await store.close();
        }
      });

      it('concurrent imports on one store run one after the other', async () => {
        const store = await factory.open();
        try {
          async function* slow(id: string): AsyncGenerator<ImportItem> {
            await new Promise((r) => setTimeout(r, 5));
            yield { record: record(id, 'npm', id.toLowerCase()), origin: id };
          }
          const [a, b] = await Promise.all([
            store.importRecords(slow('TEST-A')),
            store.importRecords(slow('TEST-B')),
          ]);
          assert.deepEqual([a.addedIds, b.addedIds], [['TEST-A'], ['TEST-B']]);
          assert.ok(b.importId > a.importId);
          assert.deepEqual(await store.changedSince(a.importId), ['TEST-B']);
          assert.deepEqual(await store.changedSince(0), ['TEST-A', 'TEST-B']);
        } finally {
          await store.close();
        }
      });
    });
  });
}
