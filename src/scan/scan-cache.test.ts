/**
 * Incremental rescans through `scan()` with a ScanCache, against a real SQLite store of real npm
 * advisories: an unchanged target is answered without extraction or store lookups, a changed one
 * looks up only its new packages, and every answer equals an uncached scan.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { scan } from './scan.js';
import type { ScanPhase } from './scan.js';
import { ScanCache } from './scan-cache.js';
import { requireOrSkip, sharedDataDir } from '../testing/shared-data.js';
import type { AdvisoryStore, AsyncAdvisoryStore, PackageQuery } from '../vulndb/advisory-store.js';
import { importFromPath } from '../vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';

const npmDir = join(sharedDataDir, 'osv', 'npm');
const haveData = existsSync(npmDir);
let dir: string;
let store: AdvisoryStore;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'containment-scan-cache-'));
  store = openSqliteAdvisoryStore(join(dir, 'vulndb.sqlite'), { create: true });
  if (haveData) await importFromPath(store, npmDir);
});
after(() => {
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

function install(root: string, name: string, version: string): void {
  mkdirSync(join(root, 'app/node_modules', name), { recursive: true });
  writeFileSync(join(root, 'app/node_modules', name, 'package.json'), JSON.stringify({ name, version }));
}

/** The store, counting the packages looked up. */
function counting(): { store: AsyncAdvisoryStore; queries: PackageQuery[] } {
  const queries: PackageQuery[] = [];
  const counted: AsyncAdvisoryStore = Object.create(store) as AsyncAdvisoryStore;
  counted.lookupMany = (q: readonly PackageQuery[]) => {
    queries.push(...q);
    return store.lookupMany(q);
  };
  return { store: counted, queries };
}

const now = new Date('2026-01-01T00:00:00Z');
const findings = async (root: string): Promise<string> =>
  JSON.stringify((await scan(root, { store, now })).vulnerabilities);

test('rescans: unchanged → no extraction, no lookups; changed → only new packages looked up; same answers', async (t) => {
  if (!requireOrSkip(t, haveData, `OSV npm records at ${npmDir}`)) return;
  const root = join(dir, 'root');
  install(root, 'minimist', '1.2.5');
  const cache = new ScanCache();
  const { store: counted, queries } = counting();
  const phases: ScanPhase[] = [];
  const run = () => scan(root, { store: counted, cache, now, onPhase: (p) => phases.push(p) });

  const first = await run();
  assert.ok(first.vulnerabilities.length > 0, 'the fixture must have findings');
  assert.equal(JSON.stringify(first.vulnerabilities), await findings(root));
  assert.equal(queries.length, 1);

  queries.length = 0;
  phases.length = 0;
  const again = await run();
  assert.equal(queries.length, 0, 'no lookups');
  assert.deepEqual(phases, ['open'], 'no walk for the inventory, no extraction, no matching');
  assert.equal(JSON.stringify(again.vulnerabilities), JSON.stringify(first.vulnerabilities));

  install(root, 'lodash', '4.17.20');
  queries.length = 0;
  const added = await run();
  assert.deepEqual(
    queries.map((q) => q.name),
    ['lodash'],
    'only the new package is looked up',
  );
  assert.equal(JSON.stringify(added.vulnerabilities), await findings(root));
  assert.ok(added.vulnerabilities.length > first.vulnerabilities.length);

  // Same size, same directory: only the file's own stat tells (mtime set apart explicitly).
  const file = join(root, 'app/node_modules/minimist/package.json');
  writeFileSync(file, JSON.stringify({ name: 'minimist', version: '1.2.8' }));
  utimesSync(file, new Date(1000), new Date(1000));
  const fixed = await run();
  assert.equal(JSON.stringify(fixed.vulnerabilities), await findings(root));
  assert.ok(!fixed.vulnerabilities.some((v) => v.package.name === 'minimist'), 'minimist 1.2.8 is fixed');
});

test('a new import drops the cache: the next rescan matches again', async (t) => {
  if (!requireOrSkip(t, haveData, `OSV npm records at ${npmDir}`)) return;
  const root = join(dir, 'root2');
  install(root, 'minimist', '1.2.5');
  const cache = new ScanCache();
  const { store: counted, queries } = counting();
  await scan(root, { store: counted, cache, now });
  await store.importRecords([], { source: 'test' });
  queries.length = 0;
  const after = await scan(root, { store: counted, cache, now });
  assert.equal(queries.length, 1, 'matched again after the import');
  assert.equal(JSON.stringify(after.vulnerabilities), await findings(root));
});

test('rescans see a removed package, a chmod u+s and a same-size rewrite with its mtime set back', async (t) => {
  if (!requireOrSkip(t, haveData, `OSV npm records at ${npmDir}`)) return;
  const root = join(dir, 'root3');
  install(root, 'minimist', '1.2.5');
  install(root, 'lodash', '4.17.20');
  const tool = join(root, 'usr/local/bin/tool');
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
  writeFileSync(tool, '#!/bin/true\n', { mode: 0o755 });
  const manifest = join(root, 'app/node_modules/minimist/package.json');
  // Whole seconds, so that setting them again restores them exactly.
  const then = new Date(1_000_000_000);
  for (const f of [tool, manifest]) utimesSync(f, then, then);
  const cache = new ScanCache();
  const { store: counted, queries } = counting();
  const run = () => scan(root, { store: counted, cache, now });
  const uncached = async () => {
    const r = await scan(root, { store, now });
    return JSON.stringify([r.vulnerabilities, r.insecureConfigurations]);
  };
  const same = (r: Awaited<ReturnType<typeof run>>) =>
    JSON.stringify([r.vulnerabilities, r.insecureConfigurations]);

  const first = await run();
  assert.ok(first.vulnerabilities.some((v) => v.package.name === 'lodash'));
  assert.ok(!first.insecureConfigurations.some((c) => c.id === 'setuid_binaries'));

  rmSync(join(root, 'app/node_modules/lodash'), { recursive: true });
  queries.length = 0;
  const removed = await run();
  assert.equal(same(removed), await uncached());
  assert.ok(!removed.vulnerabilities.some((v) => v.package.name === 'lodash'), 'the removed package is gone');
  assert.deepEqual(queries, [], 'nothing new to look up: minimist was matched already');

  // Only the file's mode and ctime change: not its size, its mtime, or its directory.
  chmodSync(tool, 0o4755);
  utimesSync(tool, then, then);
  const setuid = await run();
  assert.equal(same(setuid), await uncached());
  assert.ok(
    setuid.insecureConfigurations.some(
      (c) => c.id === 'setuid_binaries' && c.evidence.includes('/usr/local/bin/tool'),
    ),
    'the new setuid file is reported',
  );

  // 1.2.5 → 1.2.8: same size; the mtime is set back, so only the ctime tells.
  const before = statSync(manifest);
  writeFileSync(manifest, JSON.stringify({ name: 'minimist', version: '1.2.8' }));
  utimesSync(manifest, then, then);
  assert.equal(statSync(manifest).size, before.size);
  assert.equal(statSync(manifest).mtimeMs, before.mtimeMs);
  const rewritten = await run();
  assert.equal(same(rewritten), await uncached());
  assert.ok(!rewritten.vulnerabilities.some((v) => v.package.name === 'minimist'), 'minimist 1.2.8 is fixed');
});
