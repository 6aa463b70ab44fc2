/**
 * The scanner's cached, per-package matching gives exactly what a full evaluation gives, on this
 * thread and in a worker thread, and forgets its cache when the advisory database changes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Package } from '../inventory/types.js';
import { evaluateInventory } from '../scan/scan.js';
import { sharedDataDir } from '../testing/shared-data.js';
import { requireOrSkip } from '../testing/shared-data.js';
import type { AdvisoryStore } from '../vulndb/advisory-store.js';
import { importFromPath } from '../vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { openPostgresAdvisoryStore } from '../vulndb/postgres-store.js';
import { createTestDatabase, postgresReachable, postgresWhat } from '../testing/postgres.js';
import { findingKeys, joinRuns, splitRuns } from './finding-sets.js';
import { MatchWorkerPool } from './match-worker/match-pool.js';
import { PackageMatcher, contentOf } from './package-matcher.js';

const npmDir = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(npmDir);

const npm = (name: string, version: string, at = `/app/node_modules/${name}`): Package => ({
  name,
  version,
  ecosystem: 'npm',
  location: `${at}/package.json`,
  extractor: 'npm',
});
// Two copies of one version at different paths, a vulnerable and a clean version, an unknown one.
const packages: Package[] = [
  npm('minimist', '1.2.5'),
  npm('lodash', '4.17.20'),
  npm('minimist', '1.2.5', '/srv/other/node_modules/minimist'),
  npm('minimist', '1.2.8'),
  npm('left-pad', '1.0.0'),
];

let dir: string;
let dbPath: string;
let advisories: AdvisoryStore;
let pool: MatchWorkerPool;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'containment-matcher-'));
  dbPath = join(dir, 'vulndb.sqlite');
  advisories = openSqliteAdvisoryStore(dbPath, { create: true });
  if (haveData) await importFromPath(advisories, npmDir);
  pool = new MatchWorkerPool({ advisoryDbPath: dbPath });
});
after(async () => {
  await pool?.close();
  advisories?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function full(
  store: Parameters<typeof evaluateInventory>[2] = advisories,
): Promise<Awaited<ReturnType<typeof evaluateInventory>>> {
  return evaluateInventory(
    { kind: 'container', ref: 't' },
    { packages, insecureConfigurations: [], notes: [], completeness: 'complete', gaps: [] },
    store,
    { scanTime: new Date(0).toISOString() },
  );
}

test('per-package matching, here and in a worker thread, equals a full evaluation', async (t) => {
  if (!requireOrSkip(t, haveData, `OSV npm records at ${npmDir}`)) return;
  const expected = await full();
  assert.ok(expected.vulnerabilities.length > 3, 'the fixture must have findings');
  for (const matcher of [new PackageMatcher(advisories), new PackageMatcher(advisories, { remote: pool })]) {
    for (let round = 0; round < 2; round++) {
      // The second round is served from the cache.
      const content = contentOf({ packages, insecureConfigurations: [] }, await matcher.match(packages));
      // Same JSON, key order included (API answers must not change).
      assert.equal(JSON.stringify(content.vulnerabilities), JSON.stringify(expected.vulnerabilities));
      assert.deepEqual(content.summary, expected.summary);
      assert.deepEqual(content.findingKeys, findingKeys(expected.vulnerabilities, []));
    }
  }
  // The compact form round-trips.
  const runs = splitRuns(packages, expected.vulnerabilities);
  assert.ok(runs);
  assert.deepEqual(joinRuns(packages, runs), expected.vulnerabilities);
  assert.equal(splitRuns(packages.slice(1), expected.vulnerabilities), undefined);
});

test('a new advisory import empties the cache, also for matching in the worker', async (t) => {
  if (!requireOrSkip(t, haveData, `OSV npm records at ${npmDir}`)) return;
  const matcher = new PackageMatcher(advisories, { remote: pool });
  const leftPad = (await matcher.match(packages))[4];
  assert.equal(leftPad, undefined);
  await advisories.importRecords([
    {
      origin: 'test',
      record: {
        schema_version: '1.6.0',
        id: 'TEST-MATCHER-LEFTPAD-0001',
        modified: '2025-06-01T00:00:00Z',
        summary: 'Test fixture: made-up advisory for left-pad',
        affected: [
          {
            package: { ecosystem: 'npm', name: 'left-pad' },
            ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.3.1' }] }],
          },
        ],
      },
    },
  ]);
  const after = (await matcher.match(packages))[4];
  assert.deepEqual(
    after?.findings.map((f) => [f.id, f.fixedVersion]),
    [['TEST-MATCHER-LEFTPAD-0001', '1.3.1']],
  );
  assert.deepEqual((await full()).vulnerabilities.filter((v) => v.package.name === 'left-pad').length, 1);
});

test('concurrent reports share the matching of packages nobody has cached yet', async (t) => {
  if (!requireOrSkip(t, haveData, `OSV npm records at ${npmDir}`)) return;
  const asked: string[] = [];
  const matcher = new PackageMatcher(advisories, {
    remote: {
      match: async (pkgs) => {
        asked.push(...pkgs.map((p) => `${p.name}@${p.version}`));
        return pool.match(pkgs);
      },
    },
  });
  const results = await Promise.all([matcher.match(packages), matcher.match(packages.slice(1))]);
  // minimist 1.2.5 appears twice but is one match identity.
  assert.deepEqual(asked.sort(), ['left-pad@1.0.0', 'lodash@4.17.20', 'minimist@1.2.5', 'minimist@1.2.8']);
  assert.deepEqual(results[1], results[0].slice(1));
  await matcher.match(packages);
  assert.equal(asked.length, 4, 'served from the cache');
});

test('a worker that cannot open the database rejects instead of hanging', async () => {
  const broken = new MatchWorkerPool({ advisoryDbPath: join(dir, 'missing.sqlite') });
  try {
    await assert.rejects(broken.match(packages), /exited|no vulnerability database/);
  } finally {
    await broken.close();
  }
});

test('on PostgreSQL the worker reads the advisories through its own pool', async (t) => {
  if (!requireOrSkip(t, haveData, `OSV npm records at ${npmDir}`)) return;
  if (!requireOrSkip(t, await postgresReachable(), postgresWhat)) return;
  const database = await createTestDatabase('matcher');
  const store = await openPostgresAdvisoryStore(database.url, { create: true });
  const remote = new MatchWorkerPool({ database: database.url });
  try {
    await importFromPath(store, npmDir);
    const matcher = new PackageMatcher(store, { remote });
    const content = contentOf({ packages, insecureConfigurations: [] }, await matcher.match(packages));
    const expected = await full(store);
    assert.ok(expected.vulnerabilities.length > 3);
    assert.equal(JSON.stringify(content.vulnerabilities), JSON.stringify(expected.vulnerabilities));
  } finally {
    await remote.close();
    await store.close();
    await database.drop();
  }
});
