/**
 * The match cache scanner replicas share through the advisory database, on both engines, with two
 * connections standing for two replicas: a package one replica matched is answered to the other
 * without any advisory lookup and identically to matching it; a new import invalidates (its
 * entries are deleted, the next match looks up again); an import racing a match never gets that
 * match's entries under its generation; replicas writing the same keys at once do not fail; on
 * SQLite a write never waits for another connection's import.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { Package } from '../inventory/types.js';
import { requireOrSkip } from '../testing/shared-data.js';
import type { ImportItem } from '../vulndb/advisory-store.js';
import { countingLookups } from '../vulndb/counting-store.test-helper.js';
import { SHARED_READ_SQL, openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { storeFactories } from '../vulndb/store-factories.test-helper.js';
import { PackageMatcher, decodeMatch, encodeMatch, packageFindingSet, sharedKey } from './package-matcher.js';
import type { PackageMatch } from './package-matcher.js';

const engines = await storeFactories('shared_match');
after(() => engines.cleanup());

const npm = (name: string, version: string, at = `/app/node_modules/${name}`): Package => ({
  name,
  version,
  ecosystem: 'npm',
  location: `${at}/package.json`,
  extractor: 'npm',
});

function record(id: string, name: string, fixed: string, modified = '2024-01-01T00:00:00Z'): ImportItem {
  return {
    origin: `${id}.json`,
    record: {
      id,
      modified,
      affected: [
        {
          package: { ecosystem: 'npm', name },
          ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed }] }],
        },
      ],
    },
  };
}

const RECORDS = [
  record('GHSA-0001', 'minimist', '1.2.6'),
  record('GHSA-0002', 'lodash', '4.17.21'),
  record('GHSA-0003', 'lodash', '4.17.12'),
];
const PACKAGES: Package[] = [
  npm('minimist', '1.2.5'),
  npm('lodash', '4.17.20'),
  // The same match identity elsewhere: one cache entry.
  npm('minimist', '1.2.5', '/srv/other/node_modules/minimist'),
  npm('minimist', '1.2.8'),
  npm('left-pad', '1.0.0'),
];

const counting = countingLookups;

/** Comparable form of matches: digest, findings and warnings per package. */
const view = (sets: readonly PackageMatch[]) =>
  sets.map((s) => ({ digest: s.digest, findings: s.findings, warnings: s.warnings }));

test('encoded matches decode to the same set, warnings included', () => {
  const plain = packageFindingSet(npm('a', '1'), []);
  assert.deepEqual(decodeMatch(encodeMatch(plain)), plain);
  const warned: PackageMatch = { ...plain, warnings: ['cannot evaluate X-1:\nrange'] };
  assert.deepEqual(decodeMatch(encodeMatch(warned)), warned);
  // Keys are unambiguous whatever the fields hold, and hold no NUL.
  assert.notEqual(sharedKey(npm('a\u0000b', '1')), sharedKey(npm('a', 'b\u00001')));
  assert.equal(sharedKey(npm('a\u0000b', '1'))?.includes('\u0000'), false);
  assert.equal(sharedKey(npm('x'.repeat(1000), '1')), undefined);
});

for (const engine of engines.factories) {
  describe(`shared match cache (${engine.name})`, () => {
    test('replica B answers what replica A matched without looking up, identically', async (t) => {
      if (!requireOrSkip(t, engine.available, engine.what)) return;
      const [a, b] = await engine.openPair();
      try {
        await a.importRecords(RECORDS);
        const errors: unknown[] = [];
        const onSharedError = (e: unknown) => errors.push(e);
        const ca = counting(a);
        const cb = counting(b);
        const matcherA = new PackageMatcher(ca.store, { shared: true, onSharedError });
        const first = await matcherA.matchAll(PACKAGES);
        assert.equal(ca.lookups(), 1);
        assert.deepEqual([ca.calls('sharedMatches'), ca.calls('storeMatches')], [1, 1]);
        // All in the process's own cache: no statement but the generation's.
        await matcherA.matchAll(PACKAGES);
        assert.deepEqual([ca.lookups(), ca.calls('sharedMatches'), ca.calls('storeMatches')], [1, 1, 1]);
        const second = await new PackageMatcher(cb.store, { shared: true, onSharedError }).matchAll(PACKAGES);
        assert.equal(cb.lookups(), 0, 'replica B looked up advisories replica A had matched');
        // Everything was found shared: nothing to write.
        assert.deepEqual([cb.calls('sharedMatches'), cb.calls('storeMatches')], [1, 0]);
        // Identical to matching without the shared cache, and to A's.
        const alone = await new PackageMatcher(b).matchAll(PACKAGES);
        assert.deepEqual(view(second), view(alone));
        assert.deepEqual(view(first), view(alone));
        assert.deepEqual(
          second.map((s) => s.findings.map((f) => f.id)),
          [['GHSA-0001'], ['GHSA-0002'], ['GHSA-0001'], [], []],
        );
        // A package B has not seen shared yet is looked up, and only that one.
        const more = await new PackageMatcher(cb.store, { shared: true, onSharedError }).matchAll([
          ...PACKAGES,
          npm('lodash', '4.17.11'),
        ]);
        assert.equal(cb.lookups(), 1);
        assert.deepEqual(
          more[5]?.findings.map((f) => f.id),
          ['GHSA-0002', 'GHSA-0003'],
        );
        // Not shared: each process on its own, as before.
        const local = counting(b);
        await new PackageMatcher(local.store).matchAll(PACKAGES);
        assert.equal(local.lookups(), 1);
        assert.deepEqual(errors, []);
      } finally {
        await a.close();
        await b.close();
      }
    });

    test('an entry that cannot be read is matched again, not a failed report', async (t) => {
      if (!requireOrSkip(t, engine.available, engine.what)) return;
      const [a, b] = await engine.openPair();
      try {
        await a.importRecords(RECORDS);
        const generation = (await a.lastImport())?.importId as number;
        await a.storeMatches?.(generation, [
          { key: sharedKey(PACKAGES[0] as Package) as string, value: '{' },
        ]);
        const errors: unknown[] = [];
        const cb = counting(b);
        const sets = await new PackageMatcher(cb.store, {
          shared: true,
          onSharedError: (e) => errors.push(e),
        }).matchAll(PACKAGES);
        assert.equal(cb.lookups(), 1);
        assert.equal(errors.length, 1);
        assert.deepEqual(view(sets), view(await new PackageMatcher(a).matchAll(PACKAGES)));
      } finally {
        await a.close();
        await b.close();
      }
    });

    test('a new import invalidates: older entries are deleted and matches look up again', async (t) => {
      if (!requireOrSkip(t, engine.available, engine.what)) return;
      const [a, b] = await engine.openPair();
      try {
        await a.importRecords(RECORDS);
        const mb = counting(b);
        const matcherB = new PackageMatcher(mb.store, { shared: true });
        await new PackageMatcher(a, { shared: true }).matchAll(PACKAGES);
        const key = sharedKey(npm('left-pad', '1.0.0')) as string;
        const before = (await a.lastImport())?.importId as number;
        assert.equal((await b.sharedMatches?.(before, [key]))?.size, 1);
        // left-pad becomes vulnerable.
        const report = await a.importRecords([record('GHSA-0004', 'left-pad', '1.3.0')]);
        assert.equal((await b.sharedMatches?.(before, [key]))?.size, 0, 'the old generation stayed');
        const sets = await matcherB.matchAll(PACKAGES);
        assert.equal(mb.lookups(), 1);
        assert.deepEqual(
          sets[4]?.findings.map((f) => f.id),
          ['GHSA-0004'],
        );
        // …and B's matches are now shared under the new import.
        assert.equal((await a.sharedMatches?.(report.importId, [key]))?.size, 1);
      } finally {
        await a.close();
        await b.close();
      }
    });

    test('an import racing a match does not get its results under the new generation', async (t) => {
      if (!requireOrSkip(t, engine.available, engine.what)) return;
      const [a, b] = await engine.openPair();
      try {
        await a.importRecords(RECORDS);
        let importId: number | undefined;
        // The import commits (on the other connection) after A read the generation, before A's
        // advisory lookup returns.
        const racing = new Proxy(a, {
          get(target, prop) {
            const value = Reflect.get(target, prop) as unknown;
            if (prop === 'lookupMany') {
              return async (...args: unknown[]) => {
                importId = (await b.importRecords([record('GHSA-0004', 'left-pad', '1.3.0')])).importId;
                return (value as (...x: unknown[]) => unknown).apply(target, args);
              };
            }
            return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
          },
        });
        await new PackageMatcher(racing, { shared: true }).matchAll(PACKAGES);
        const keys = PACKAGES.map((p) => sharedKey(p) as string);
        assert.equal((await b.sharedMatches?.(importId as number, keys))?.size, 0);
        const cb = counting(b);
        const sets = await new PackageMatcher(cb.store, { shared: true }).matchAll(PACKAGES);
        assert.equal(cb.lookups(), 1);
        assert.deepEqual(
          sets[4]?.findings.map((f) => f.id),
          ['GHSA-0004'],
        );
      } finally {
        await a.close();
        await b.close();
      }
    });

    test('replicas storing the same keys at once, in any order, do not fail', async (t) => {
      if (!requireOrSkip(t, engine.available, engine.what)) return;
      const [a, b] = await engine.openPair();
      try {
        await a.importRecords(RECORDS);
        const errors: unknown[] = [];
        const onSharedError = (e: unknown) => errors.push(e);
        const many = Array.from({ length: 300 }, (_, i) => npm(`pkg-${i % 150}`, `1.0.${i}`));
        const reversed = [...many].reverse();
        // Fresh matchers each round: every one misses locally and writes overlapping keys.
        for (let round = 0; round < 3; round++) {
          const batch = many.map((p) => ({ ...p, version: `${p.version}-${round}` }));
          const back = reversed.map((p) => ({ ...p, version: `${p.version}-${round}` }));
          const results = await Promise.all([
            new PackageMatcher(a, { shared: true, onSharedError }).matchAll(batch),
            new PackageMatcher(b, { shared: true, onSharedError }).matchAll(back),
            new PackageMatcher(a, { shared: true, onSharedError }).matchAll(back),
            new PackageMatcher(b, { shared: true, onSharedError }).matchAll(batch),
          ]);
          assert.equal(results[0].length, 300);
        }
        // The stores' writes directly, concurrently and in opposite orders.
        const generation = (await a.lastImport())?.importId as number;
        const entries = Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: '[]' }));
        await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            (i % 2 === 0 ? a : b).storeMatches?.(generation, i % 4 < 2 ? entries : [...entries].reverse()),
          ),
        );
        assert.deepEqual(errors, []);
        assert.equal(
          (
            await b.sharedMatches?.(
              generation,
              entries.map((e) => e.key),
            )
          )?.size,
          200,
        );
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}

test('SQLite: the read searches the index per key; a write while another connection holds the write lock (an import) is skipped, not waited for', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'containment-shared-match-'));
  const path = join(dir, 'vulndb.sqlite');
  const store = openSqliteAdvisoryStore(path, { create: true });
  const importer = new Database(path);
  try {
    await store.importRecords(RECORDS);
    const generation = store.lastImport()?.importId as number;
    const entry = { key: sharedKey(PACKAGES[0] as Package) as string, value: '[]' };
    // A batch's keys are searched one by one in the (generation, key) index, never a scan.
    const plan = (
      importer.prepare(`EXPLAIN QUERY PLAN ${SHARED_READ_SQL}`).all('[]', generation) as { detail: string }[]
    ).map((row) => row.detail);
    assert.match(plan[0] ?? '', /^SCAN j\b/);
    assert.match(plan[1] ?? '', /^SEARCH m USING INDEX .*\(generation=\? AND key=\?\)/);
    importer.exec('BEGIN IMMEDIATE');
    const started = performance.now();
    store.storeMatches?.(generation, [entry]);
    assert.ok(performance.now() - started < 1000, 'the write waited for the lock');
    importer.exec('ROLLBACK');
    assert.equal(store.sharedMatches?.(generation, [entry.key]).size, 0);
    store.storeMatches?.(generation, [entry]);
    assert.equal(store.sharedMatches?.(generation, [entry.key]).size, 1);
  } finally {
    importer.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
